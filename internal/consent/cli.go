package consent

import (
	"encoding/json"
	"fmt"
	"io"
)

// report is the operator's view of one TC string: the decoded fields
// (flattened in), whether the string is valid under TCF v2.2 and why not,
// and what it grants our vendor.
type report struct {
	*TCString
	Valid    bool     `json:"valid"`
	Error    string   `json:"error,omitempty"`
	VendorID int      `json:"vendorId"`
	Grants   []string `json:"grants"`
}

// WriteJSON writes the operator's view of TC string s as indented JSON: every
// decoded field, "valid" with "error" when it is not, and the activities it
// grants vendorID. A string that does not decode still gets a report (valid
// false, its error, no grants), and WriteJSON then returns that error too so
// a command can exit non-zero; otherwise it returns only write errors.
func WriteJSON(w io.Writer, s string, vendorID int) error {
	rep := report{VendorID: vendorID, Grants: []string{}}
	t, decodeErr := Decode(s)
	switch {
	case decodeErr != nil:
		rep.Error = decodeErr.Error()
	default:
		rep.TCString = t
		if err := t.Valid(); err != nil {
			rep.Error = err.Error()
		} else {
			rep.Valid = true
		}
		if names := t.Grants(vendorID).Names(); names != nil {
			rep.Grants = names
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("consent: write report: %w", err)
	}
	return decodeErr
}
