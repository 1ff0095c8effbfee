package segments

// recordAllowed reports whether every segment of r is in tax and none is
// sensitive, and every rule is one of tax's (P1).
func recordAllowed(r *Record, tax *Taxonomy) bool {
	for _, s := range r.Segments {
		seg, ok := tax.Segment(s.ID)
		if !ok || seg.Category.Sensitive() {
			return false
		}
		if _, bad := Sensitive(s.ID + " " + seg.Name); bad {
			return false
		}
		if !tax.hasRule(s.Rule) {
			return false
		}
	}
	return true
}

// hasRule reports whether label is a rule label of t.
func (t *Taxonomy) hasRule(label string) bool {
	for i := range t.rules {
		if t.rules[i].label == label {
			return true
		}
	}
	return false
}
