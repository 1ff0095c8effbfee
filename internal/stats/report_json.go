package stats

import (
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// WriteJSON writes r as encoding/json writes it (HTML left unescaped, a
// newline at the end, as api.WriteJSON does), without reflection and in
// chunks: a month of hourly points by value is tens of thousands of rows
// (megabytes), and encoding them by reflection cost more than reading and
// summing the records.
func (r *Report) WriteJSON(w io.Writer) error {
	var err error
	flush := func(b []byte) []byte {
		if len(b) < jsonChunk || err != nil {
			return b
		}
		_, err = w.Write(b)
		return b[:0]
	}
	b := r.appendJSON(make([]byte, 0, jsonChunk+4096), flush)
	if err == nil {
		_, err = w.Write(b)
	}
	return err
}

// jsonChunk is how much WriteJSON buffers before writing.
const jsonChunk = 32 << 10

// AppendJSON appends what WriteJSON writes.
func (r *Report) AppendJSON(b []byte) []byte {
	return r.appendJSON(b, func(b []byte) []byte { return b })
}

// appendJSON appends r; after each row, flush may write out what b holds
// and return it emptied.
func (r *Report) appendJSON(b []byte, flush func([]byte) []byte) []byte {
	b = append(b, `{"scope":`...)
	b = appendJSONString(b, r.Scope)
	b = append(b, `,"id":`...)
	b = appendJSONString(b, r.ID)
	b = append(b, `,"from":`...)
	b = appendJSONTime(b, r.From)
	b = append(b, `,"to":`...)
	b = appendJSONTime(b, r.To)
	b = append(b, `,"by":`...)
	b = appendJSONString(b, r.By)
	if r.Breakdown != "" {
		b = append(b, `,"breakdown":`...)
		b = appendJSONString(b, r.Breakdown)
	}
	b = append(b, `,"totals":{`...)
	b = r.Totals.appendJSONFields(b)
	b = append(b, `},"series":`...)
	if r.Series == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range r.Series {
			if i > 0 {
				b = append(b, ',')
			}
			row := &r.Series[i]
			b = append(b, `{"time":`...)
			b = appendJSONTime(b, row.Time)
			if row.Value != nil {
				b = append(b, `,"value":`...)
				b = appendJSONString(b, *row.Value)
			}
			b = append(b, ',')
			b = row.Metrics.appendJSONFields(b)
			b = append(b, '}')
			b = flush(b)
		}
		b = append(b, ']')
	}
	if len(r.Values) > 0 {
		b = append(b, `,"values":[`...)
		for i := range r.Values {
			if i > 0 {
				b = append(b, ',')
			}
			v := &r.Values[i]
			b = append(b, `{"value":`...)
			b = appendJSONString(b, v.Value)
			b = append(b, ',')
			b = v.Metrics.appendJSONFields(b)
			b = append(b, '}')
			b = flush(b)
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...)
}

// appendJSONFields appends m's fields, without braces.
func (m *Metrics) appendJSONFields(b []byte) []byte {
	b = append(b, `"impressions":`...)
	b = strconv.AppendInt(b, m.Impressions, 10)
	b = append(b, `,"viewable":`...)
	b = strconv.AppendInt(b, m.Viewable, 10)
	b = append(b, `,"viewable_rate":`...)
	b = appendJSONFloat(b, m.ViewableRate)
	b = append(b, `,"clicks":`...)
	b = strconv.AppendInt(b, m.Clicks, 10)
	b = append(b, `,"ctr":`...)
	b = appendJSONFloat(b, m.CTR)
	b = append(b, `,"conversions":`...)
	b = strconv.AppendInt(b, m.Conversions, 10)
	b = append(b, `,"conversion_rate":`...)
	b = appendJSONFloat(b, m.ConversionRate)
	b = append(b, `,"calls":`...)
	b = strconv.AppendInt(b, m.Calls, 10)
	b = append(b, `,"spend":`...)
	b = appendJSONFloat(b, m.Spend)
	if a := m.Audience; a != nil {
		b = append(b, `,"pageviews":`...)
		b = strconv.AppendUint(b, a.Pageviews, 10)
		if a.Visitors != nil {
			b = append(b, `,"visitors":`...)
			b = strconv.AppendUint(b, *a.Visitors, 10)
		}
		b = append(b, `,"searches":`...)
		b = strconv.AppendUint(b, a.Searches, 10)
		b = append(b, `,"events":`...)
		b = strconv.AppendUint(b, a.Events, 10)
	}
	if m.Reach != nil {
		b = append(b, `,"reach":{"visitors":`...)
		b = strconv.AppendUint(b, m.Reach.Visitors, 10)
		b = append(b, `,"frequency":`...)
		b = appendJSONFloat(b, m.Reach.Frequency)
		b = append(b, '}')
	}
	return b
}

func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendJSONFloat formats f as encoding/json does (ES6 number to string);
// the figures are never NaN or infinite, which it refuses: those write 0.
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, '0')
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does with HTML left as is.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
