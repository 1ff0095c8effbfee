package profiles

import (
	"bytes"
	"fmt"
)

// Size limits of uploads.
const (
	MaxPhoto  = 2 << 20
	MaxResume = 5 << 20
)

// Kind is what an upload is for.
type Kind string

const (
	KindPhoto  Kind = "photo"
	KindResume Kind = "resume"
)

// Limit returns the size limit of k.
func (k Kind) Limit() int64 {
	if k == KindResume {
		return MaxResume
	}
	return MaxPhoto
}

// Sniff returns the media type of data from its magic bytes, when it is one
// accepted for k: JPEG, PNG or WebP for a photo; PDF for a resume. The
// client's Content-Type is never trusted.
func Sniff(k Kind, data []byte) (string, error) {
	if int64(len(data)) > k.Limit() {
		return "", fmt.Errorf("%w: %s of %d bytes exceeds %d", ErrMediaSize, k, len(data), k.Limit())
	}
	var typ string
	switch {
	case k == KindPhoto && len(data) >= 3 && bytes.Equal(data[:3], []byte{0xFF, 0xD8, 0xFF}):
		typ = "image/jpeg"
	case k == KindPhoto && len(data) >= 8 && bytes.Equal(data[:8], []byte("\x89PNG\r\n\x1a\n")):
		typ = "image/png"
	case k == KindPhoto && len(data) >= 12 && bytes.Equal(data[:4], []byte("RIFF")) && bytes.Equal(data[8:12], []byte("WEBP")):
		typ = "image/webp"
	case k == KindResume && len(data) >= 5 && bytes.Equal(data[:5], []byte("%PDF-")):
		typ = "application/pdf"
	default:
		want := "JPEG, PNG or WebP"
		if k == KindResume {
			want = "PDF"
		}
		return "", fmt.Errorf("%w: a %s must be %s", ErrMediaType, k, want)
	}
	return typ, nil
}

func objectName(k Kind, id string) string { return string(k) + "/" + id }
