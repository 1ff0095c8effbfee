package stats

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/phone"
)

// MaxCallBody bounds a call webhook's body.
const MaxCallBody = 4 << 10

// Call is a telephony provider's report of one call to a tracking number.
type Call struct {
	TrackingNumber string  `json:"tracking_number"`
	Start          string  `json:"start"` // RFC 3339
	DurationS      float64 `json:"duration_s"`
	CallType       string  `json:"call_type"`
	CallerNumber   string  `json:"caller_number"` // read for its area code, never kept
}

// Limits of a call report.
const (
	maxCallDuration = 24 * 3600
	maxCallAge      = 30 * 24 * time.Hour
	maxCallAhead    = time.Hour
)

// ParseCall decodes and checks a call report and returns the event it
// becomes, without the campaign. Only the country and area code of the
// caller's number survive (in Event.Area); the number itself is dropped here.
// The tracking number is returned normalized: "+" and digits, or digits.
func ParseCall(body []byte, now time.Time) (*event.Event, string, error) {
	if len(body) > MaxCallBody {
		return nil, "", badParam("body_too_large", "the body exceeds %d bytes", MaxCallBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var c Call
	if err := dec.Decode(&c); err != nil {
		var typ *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.EOF):
			return nil, "", badParam("empty_body", "the request needs a JSON body")
		case errors.As(err, &typ):
			return nil, "", badParam("invalid_field", "field %q has the wrong type", typ.Field)
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return nil, "", badParam("unknown_field", "%s (tracking_number, start, duration_s, call_type, caller_number)", strings.TrimPrefix(err.Error(), "json: "))
		}
		return nil, "", badParam("invalid_json", "the body is not valid JSON")
	}
	if dec.More() {
		return nil, "", badParam("invalid_json", "the body must hold one JSON value")
	}
	number, ok := phone.Normalize(c.TrackingNumber)
	if !ok {
		return nil, "", badParam("invalid_tracking_number", "tracking_number must be a phone number of 3-15 digits")
	}
	start, err := time.Parse(time.RFC3339, c.Start)
	if err != nil {
		return nil, "", badParam("invalid_start", "start must be an RFC 3339 time, e.g. 2025-01-31T14:05:00Z")
	}
	if start.After(now.Add(maxCallAhead)) || start.Before(now.Add(-maxCallAge)) {
		return nil, "", badParam("invalid_start", "start must be within the last 30 days")
	}
	if math.IsNaN(c.DurationS) || c.DurationS < 0 || c.DurationS > maxCallDuration {
		return nil, "", badParam("invalid_duration", "duration_s must be 0-%d seconds", maxCallDuration)
	}
	typ := strings.ToLower(c.CallType)
	if !validCallType(typ) {
		return nil, "", badParam("invalid_call_type", "call_type must be 1-32 letters, digits, '_' or '-' (e.g. inbound, missed)")
	}
	area, err := CallerArea(c.CallerNumber)
	if err != nil {
		return nil, "", badParam("invalid_caller_number", "caller_number must be a phone number, e.g. +7 495 123-45-67")
	}
	e := &event.Event{
		TS:    start.UnixMilli(),
		Kind:  event.KindCall,
		Value: math.Round(c.DurationS*1000) / 1000,
		Name:  typ,
		Area:  area,
	}
	// The id is the call's, so a provider's retry within the stream's
	// dedupe window is stored once.
	h := sha256.New()
	for _, s := range []string{"call", number, strconv.FormatInt(start.UnixMilli(), 10), typ, strconv.FormatFloat(e.Value, 'f', -1, 64), area} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	copy(e.ID[:], h.Sum(nil))
	return e, number, nil
}

func validCallType(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// CallerArea keeps the country calling code and the area code of an
// international number, e.g. "+7 495" of "+7 495 123-45-67", and nothing
// more. When the number is written in groups the second group is the area
// code (at most 5 digits); otherwise the area is the 3 digits after the
// country code. A national number (no "+") has no known country: its area
// is "". An empty or withheld number gives "".
func CallerArea(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "anonymous") || strings.EqualFold(s, "withheld") {
		return "", nil
	}
	norm, ok := phone.Normalize(s)
	if !ok || len(norm) < 8 { // "+" and at least 7 digits, or 7 digits
		return "", errors.New("not a phone number")
	}
	if norm[0] != '+' {
		return "", nil
	}
	digits := norm[1:]
	cc := countryCode(digits)
	if cc == "" {
		return "", errors.New("unknown country code")
	}
	national := digits[len(cc):]
	area := groupArea(s, cc)
	if area == "" || len(national)-len(area) < 4 {
		area = national[:min(3, len(national)-4)]
	}
	if area == "" {
		return "+" + cc, nil
	}
	return "+" + cc + " " + area, nil
}

// groupArea returns the digits of the group after the country code when s
// is written in groups ("+7 (495) 123-45-67"), else "".
func groupArea(s, cc string) string {
	var groups []string
	cur := ""
	for i := 0; i < len(s); i++ {
		c := s[i]
		if '0' <= c && c <= '9' {
			cur += string(c)
			continue
		}
		if cur != "" {
			groups = append(groups, cur)
			cur = ""
		}
	}
	if cur != "" {
		groups = append(groups, cur)
	}
	if len(groups) < 3 || groups[0] != cc || len(groups[1]) > 5 {
		return ""
	}
	return groups[1]
}

// twoDigit lists the two-digit country calling codes (ITU-T E.164); 1 and 7
// are the one-digit ones and every other code has three digits, since the
// codes form a prefix-free set.
var twoDigit = map[string]bool{
	"20": true, "27": true, "30": true, "31": true, "32": true, "33": true, "34": true, "36": true,
	"39": true, "40": true, "41": true, "43": true, "44": true, "45": true, "46": true, "47": true,
	"48": true, "49": true, "51": true, "52": true, "53": true, "54": true, "55": true, "56": true,
	"57": true, "58": true, "60": true, "61": true, "62": true, "63": true, "64": true, "65": true,
	"66": true, "81": true, "82": true, "84": true, "86": true, "90": true, "91": true, "92": true,
	"93": true, "94": true, "95": true, "98": true,
}

func countryCode(digits string) string {
	switch {
	case len(digits) < 4:
		return ""
	case digits[0] == '0':
		return ""
	case digits[0] == '1' || digits[0] == '7':
		return digits[:1]
	case twoDigit[digits[:2]]:
		return digits[:2]
	}
	return digits[:3]
}
