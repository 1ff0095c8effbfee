package decision

// Block says why a campaign that passes targeting may not serve right now.
type Block uint8

const (
	Serve            Block = iota // nothing blocks it
	NotStarted                    // before its flight
	Ended                         // after its flight
	OverBudget                    // budget spent, or paced out for now
	OutsideDayParts               // not an open hour of its day parts
	NotInAllSegments              // the visitor lacks a segment it requires (or consent to use them)
	Capped                        // a frequency cap is reached
)
