// Package decision is the pure core of the ad decision: when a campaign may
// deliver (flight, day parts, the share of the day passed), whether a
// visitor's frequency caps are reached, how much budget is left across the
// edges and what one edge may claim of it, and the seeded draws among
// equals. It takes plain values, returns plain values, and imports neither
// the network stack nor the rest of adserver: the index and the edge do the
// I/O around it.
package decision
