package decision

// Splitmix is one step of splitmix64 (Steele, Lea and Flood, "Fast
// splittable pseudorandom number generators", OOPSLA 2014): a fast,
// well-mixed step for the draws among equals from one seed per request.
func Splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// Draw chooses one of a stream of candidates, each with the chance of its
// weight among all the weights offered (reservoir sampling), allocating
// nothing.
type Draw struct {
	rnd, total uint64
}

// NewDraw starts a draw from seed.
func NewDraw(seed uint64) Draw { return Draw{rnd: seed} }

// Offer adds a candidate of weight w (at least 1) and reports whether it
// is, for now, the chosen one. The first candidate always is.
func (d *Draw) Offer(w uint64) bool {
	d.total += w
	d.rnd = Splitmix(d.rnd)
	return d.rnd%d.total < w
}
