package stats

import (
	"strings"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/event"
)

func TestCallerArea(t *testing.T) {
	cases := []struct{ in, want string }{
		{"+7 495 123-45-67", "+7 495"},
		{"+7 (495) 123-45-67", "+7 495"},
		{"+74951234567", "+7 495"},
		{"+1 (212) 555-1234", "+1 212"},
		{"+12125551234", "+1 212"},
		{"+44 20 7946 0958", "+44 20"},
		{"+442079460958", "+44 207"},
		{"+49 30 901820", "+49 30"},
		{"+380 44 123 4567", "+380 44"},
		{"+7 4951234567", "+7 495"},
		{"8 495 123-45-67", ""}, // national: no country known
		{"", ""},
		{"anonymous", ""},
		{"+7 49512 34", "+7 495"}, // the second group would leave too few digits
	}
	for _, c := range cases {
		got, err := CallerArea(c.in)
		if err != nil || got != c.want {
			t.Errorf("%q: %q %v, want %q", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"call me", "+0 123 4567", "+7 495", "12", "+7 495 123-45-67 ext 9", strings.Repeat("1", 100)} {
		if got, err := CallerArea(in); err == nil {
			t.Errorf("%q accepted as %q", in, got)
		}
	}
}

func TestParseCall(t *testing.T) {
	now := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	body := `{"tracking_number":"+7 (495) 000-11-22","start":"2025-05-01T11:00:00+03:00","duration_s":61,"call_type":"Inbound","caller_number":"+7 916 123-45-67"}`
	e, number, err := ParseCall([]byte(body), now)
	if err != nil {
		t.Fatal(err)
	}
	if number != "+74950001122" || e.Kind != event.KindCall || e.TS != time.Date(2025, 5, 1, 8, 0, 0, 0, time.UTC).UnixMilli() ||
		e.Value != 61 || e.Name != "inbound" || e.Area != "+7 916" || e.ID == (event.ID{}) {
		t.Errorf("%q %+v", number, e)
	}
	again, _, _ := ParseCall([]byte(body), now)
	if again.ID != e.ID {
		t.Error("the same call got another id")
	}
	if strings.Contains(string(e.Marshal()), "123") {
		t.Error("the caller's number is in the event")
	}
	old := `{"tracking_number":"+74950001122","start":"2025-01-01T00:00:00Z","duration_s":1,"call_type":"missed"}`
	if _, _, err := ParseCall([]byte(old), now); err == nil || !strings.Contains(err.Error(), "30 days") {
		t.Errorf("old call: %v", err)
	}
}
