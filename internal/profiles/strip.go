package profiles

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Strip removes the metadata of a photo without re-encoding it: EXIF (GPS
// position, camera, dates), XMP, IPTC and comments. JPEG loses its APP1,
// APP3-APP13 and APP15 segments and COM; PNG its tEXt, zTXt, iTXt, eXIf and
// tIME chunks; WebP its EXIF and XMP chunks (and their VP8X flags). Colour
// data (JFIF, ICC, Adobe) stays. Bytes after the end of the image go too.
// typ is what Sniff returned; a file that does not parse is refused.
func Strip(typ string, data []byte) ([]byte, error) {
	if len(data) > MaxPhoto {
		return nil, fmt.Errorf("%w: photo of %d bytes exceeds %d", ErrMediaSize, len(data), MaxPhoto)
	}
	switch typ {
	case "image/jpeg":
		return stripJPEG(data)
	case "image/png":
		return stripPNG(data)
	case "image/webp":
		return stripWebP(data)
	}
	return nil, fmt.Errorf("%w: %s", ErrMediaType, typ)
}

func malformed(format string) error {
	return fmt.Errorf("%w: the %s file is malformed", ErrMediaType, format)
}

// JPEG markers (ITU T.81 B.1.1.3).
const (
	jpegSOI = 0xD8
	jpegEOI = 0xD9
	jpegSOS = 0xDA
	jpegCOM = 0xFE
)

// dropJPEG reports whether a segment is metadata: APP1 (EXIF, XMP), APP3 to
// APP13 (APP13: Photoshop IPTC), APP15 and COM. APP0 (JFIF), APP2 (ICC) and
// APP14 (Adobe colour transform) stay: decoders need them.
func dropJPEG(marker byte) bool {
	switch {
	case marker == jpegCOM, marker == 0xE1, marker == 0xEF:
		return true
	case marker >= 0xE3 && marker <= 0xED:
		return true
	}
	return false
}

func stripJPEG(data []byte) ([]byte, error) {
	if len(data) < 4 || data[0] != 0xFF || data[1] != jpegSOI {
		return nil, malformed("JPEG")
	}
	out := make([]byte, 0, len(data))
	out = append(out, 0xFF, jpegSOI)
	i := 2
	for {
		// A marker: 0xFF, optional fill bytes 0xFF, the code.
		if i >= len(data) || data[i] != 0xFF {
			return nil, malformed("JPEG")
		}
		for i < len(data) && data[i] == 0xFF {
			i++
		}
		if i >= len(data) {
			return nil, malformed("JPEG")
		}
		marker := data[i]
		i++
		switch {
		case marker == jpegEOI:
			return append(out, 0xFF, jpegEOI), nil // anything after the image goes
		case marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7):
			out = append(out, 0xFF, marker) // no length
			continue
		case marker == 0x00 || marker == jpegSOI:
			return nil, malformed("JPEG")
		}
		if i+2 > len(data) {
			return nil, malformed("JPEG")
		}
		n := int(binary.BigEndian.Uint16(data[i:]))
		if n < 2 || i+n > len(data) {
			return nil, malformed("JPEG")
		}
		seg := data[i : i+n]
		i += n
		if !dropJPEG(marker) {
			out = append(out, 0xFF, marker)
			out = append(out, seg...)
		}
		if marker != jpegSOS {
			continue
		}
		// Entropy-coded data runs to the next marker that is not a stuffed
		// zero or a restart.
		start := i
		for {
			if i+1 >= len(data) {
				return nil, malformed("JPEG")
			}
			if data[i] == 0xFF && data[i+1] != 0x00 && data[i+1] != 0xFF && (data[i+1] < 0xD0 || data[i+1] > 0xD7) {
				break
			}
			i++
		}
		out = append(out, data[start:i]...)
	}
}

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// dropPNG reports whether a chunk is metadata: text, EXIF and the time of
// the last change.
func dropPNG(typ string) bool {
	switch typ {
	case "tEXt", "zTXt", "iTXt", "eXIf", "tIME":
		return true
	}
	return false
}

func stripPNG(data []byte) ([]byte, error) {
	if !bytes.HasPrefix(data, pngSignature) {
		return nil, malformed("PNG")
	}
	out := make([]byte, 0, len(data))
	out = append(out, pngSignature...)
	i := len(pngSignature)
	for first := true; ; first = false {
		if i+12 > len(data) {
			return nil, malformed("PNG")
		}
		n := binary.BigEndian.Uint32(data[i:])
		if n > uint32(len(data)-i-12) {
			return nil, malformed("PNG")
		}
		end := i + 12 + int(n)
		typ := string(data[i+4 : i+8])
		if first != (typ == "IHDR") {
			return nil, malformed("PNG")
		}
		if crc32.ChecksumIEEE(data[i+4:end-4]) != binary.BigEndian.Uint32(data[end-4:]) {
			return nil, malformed("PNG")
		}
		if !dropPNG(typ) {
			out = append(out, data[i:end]...)
		}
		i = end
		if typ == "IEND" {
			return out, nil // anything after the image goes
		}
	}
}

// VP8X flags of the metadata chunks.
const (
	webpFlagEXIF = 0x08
	webpFlagXMP  = 0x04
)

func stripWebP(data []byte) ([]byte, error) {
	if len(data) < 12 || string(data[:4]) != "RIFF" || string(data[8:12]) != "WEBP" {
		return nil, malformed("WebP")
	}
	size := binary.LittleEndian.Uint32(data[4:])
	if size < 4 || size > uint32(len(data)-8) {
		return nil, malformed("WebP")
	}
	body := data[12 : 8+size] // anything after the RIFF goes
	out := make([]byte, 12, len(data))
	copy(out, data[:12])
	vp8x := -1
	for i := 0; i < len(body); {
		if i+8 > len(body) {
			return nil, malformed("WebP")
		}
		fourcc := string(body[i : i+4])
		n := binary.LittleEndian.Uint32(body[i+4:])
		if n > uint32(len(body)-i-8) {
			return nil, malformed("WebP")
		}
		end := i + 8 + int(n)
		if n%2 == 1 && end < len(body) {
			end++ // padding byte
		}
		switch fourcc {
		case "EXIF", "XMP ":
		case "VP8X":
			if n < 10 {
				return nil, malformed("WebP")
			}
			vp8x = len(out)
			out = append(out, body[i:end]...)
		default:
			out = append(out, body[i:end]...)
		}
		i = end
	}
	if vp8x >= 0 {
		out[vp8x+8] &^= webpFlagEXIF | webpFlagXMP
	}
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out, nil
}
