package consent

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func TestWriteJSON(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantErr   error
		valid     bool
		grants    []string
		hasFields bool
	}{
		{"official example", official, nil, false, []string{}, true},
		{"valid", mustEncode(t, validTC()), nil, true,
			[]string{"store_on_device", "contextual", "build_profile", "personalize", "measure"}, true},
		{"garbage", "%%%", ErrMalformed, false, []string{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := WriteJSON(&buf, tt.in, ourVendor)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("WriteJSON error = %v, want %v", err, tt.wantErr)
			}
			var got struct {
				Valid    bool     `json:"valid"`
				Error    string   `json:"error"`
				VendorID int      `json:"vendorId"`
				Grants   []string `json:"grants"`
				CmpID    *int     `json:"cmpId"`
			}
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, buf.String())
			}
			if got.Valid != tt.valid || (got.Error == "") != tt.valid {
				t.Errorf("valid = %t, error = %q; want valid %t", got.Valid, got.Error, tt.valid)
			}
			if !reflect.DeepEqual(got.Grants, tt.grants) || got.VendorID != ourVendor {
				t.Errorf("grants = %q for vendor %d, want %q", got.Grants, got.VendorID, tt.grants)
			}
			if (got.CmpID != nil) != tt.hasFields {
				t.Errorf("decoded fields present = %t, want %t\n%s", got.CmpID != nil, tt.hasFields, buf.String())
			}
			if !bytes.Contains(buf.Bytes(), []byte("\n  \"")) {
				t.Errorf("output is not indented:\n%s", buf.String())
			}
		})
	}
}
