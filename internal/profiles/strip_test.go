package profiles_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"

	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/internal/profiles"
)

func testImage() image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, 16, 12))
	for y := range 12 {
		for x := range 16 {
			img.Set(x, y, color.NRGBA{uint8(x * 16), uint8(y * 20), 90, 255})
		}
	}
	return img
}

// exifGPS is an APP1 EXIF segment (CIPA DC-008 / TIFF 6.0, big-endian) with
// the camera make in IFD0 and a GPS IFD holding latitude 48°51'24"N: what a
// phone writes into a photo taken at home.
func exifGPS() []byte {
	var t bytes.Buffer
	w := func(v any) { _ = binary.Write(&t, binary.BigEndian, v) }
	t.WriteString("MM")
	w(uint16(42))
	w(uint32(8)) // IFD0 at 8
	// IFD0: 2 entries: Make (ASCII, 12 bytes at 38), GPSInfo pointer (LONG) to 50.
	w(uint16(2))
	w(uint16(0x010F))
	w(uint16(2))
	w(uint32(12))
	w(uint32(38))
	w(uint16(0x8825))
	w(uint16(4))
	w(uint32(1))
	w(uint32(50))
	w(uint32(0))                        // no next IFD; now at 38
	t.WriteString("SpyPhone 9\x00\x00") // 12 bytes; now at 50
	// GPS IFD: GPSLatitudeRef "N", GPSLatitude 3 RATIONALs at 80.
	w(uint16(2))
	w(uint16(0x0001))
	w(uint16(2))
	w(uint32(2))
	t.WriteString("N\x00\x00\x00")
	w(uint16(0x0002))
	w(uint16(5))
	w(uint32(3))
	w(uint32(80))
	w(uint32(0)) // now at 80
	for _, r := range [][2]uint32{{48, 1}, {51, 1}, {24, 1}} {
		w(r[0])
		w(r[1])
	}
	body := append([]byte("Exif\x00\x00"), t.Bytes()...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(body)+2))
	return append(seg, body...)
}

func jpegSegment(marker byte, body string) []byte {
	seg := []byte{0xFF, marker, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(body)+2))
	return append(seg, body...)
}

func pngChunk(typ, data string) []byte {
	c := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	c = append(c, typ...)
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

func webpChunk(fourcc, data string) []byte {
	c := append([]byte(fourcc), binary.LittleEndian.AppendUint32(nil, uint32(len(data)))...)
	c = append(c, data...)
	if len(data)%2 == 1 {
		c = append(c, 0)
	}
	return c
}

func riff(chunks ...[]byte) []byte {
	body := []byte("WEBP")
	for _, c := range chunks {
		body = append(body, c...)
	}
	return append(append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...), body...)
}

func TestStrip(t *testing.T) {
	var plainJPEG bytes.Buffer
	if err := jpeg.Encode(&plainJPEG, testImage(), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	j := plainJPEG.Bytes()
	// The metadata goes right after SOI, where cameras put it, and a comment
	// and IPTC block before the scan; junk follows EOI.
	dirtyJPEG := append([]byte{0xFF, 0xD8}, exifGPS()...)
	dirtyJPEG = append(dirtyJPEG, jpegSegment(0xED, "Photoshop 3.0\x008BIM caption: at home")...)
	dirtyJPEG = append(dirtyJPEG, j[2:len(j)-2]...)
	dirtyJPEG = append(dirtyJPEG, jpegSegment(0xFE, "taken at 12 Rue Secret")...)
	dirtyJPEG = append(dirtyJPEG, 0xFF, 0xD9)
	dirtyJPEG = append(dirtyJPEG, "trailing secret"...)
	// The COM above lands after the scan's data, before EOI: find it there too.

	var plainPNG bytes.Buffer
	if err := png.Encode(&plainPNG, testImage()); err != nil {
		t.Fatal(err)
	}
	p := plainPNG.Bytes()
	ihdrEnd := 8 + 12 + 13
	dirtyPNG := append([]byte{}, p[:ihdrEnd]...)
	dirtyPNG = append(dirtyPNG, pngChunk("tEXt", "Comment\x00taken at 12 Rue Secret")...)
	dirtyPNG = append(dirtyPNG, pngChunk("eXIf", string(exifGPS()[10:]))...)
	dirtyPNG = append(dirtyPNG, pngChunk("iTXt", "Location\x00\x00\x00\x00\x00Rue Secret")...)
	dirtyPNG = append(dirtyPNG, pngChunk("zTXt", "Author\x00\x00x\x9c")...)
	dirtyPNG = append(dirtyPNG, pngChunk("tIME", "\x07\xe8\x01\x02\x03\x04\x05")...)
	dirtyPNG = append(dirtyPNG, p[ihdrEnd:]...)
	dirtyPNG = append(dirtyPNG, "trailing secret"...)

	vp8x := "\x3c\x00\x00\x00" + "\x0f\x00\x00" + "\x0b\x00\x00" // ICC|alpha|EXIF|XMP; 16x12
	vp8l := "\x2f\x0f\xc0\x02\x00\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
	dirtyWebP := riff(webpChunk("VP8X", vp8x), webpChunk("ICCP", "icc"), webpChunk("VP8L", vp8l),
		webpChunk("EXIF", string(exifGPS()[10:])), webpChunk("XMP ", "<x:xmpmeta>Rue Secret</x:xmpmeta>"))
	cleanWebP := riff(webpChunk("VP8X", "\x30\x00\x00\x00\x0f\x00\x00\x0b\x00\x00"), webpChunk("ICCP", "icc"), webpChunk("VP8L", vp8l))

	secrets := [][]byte{[]byte("SpyPhone"), []byte("Exif\x00\x00"), []byte("Rue Secret"), []byte("8BIM"), []byte("trailing secret"), {0, 0, 0, 48, 0, 0, 0, 1, 0, 0, 0, 51}}
	for _, tc := range []struct {
		name, typ string
		in        []byte
		want      []byte // nil: only check decoding
		decode    func([]byte) (image.Image, error)
	}{
		{"jpeg clean", "image/jpeg", j, j, func(b []byte) (image.Image, error) { return jpeg.Decode(bytes.NewReader(b)) }},
		{"jpeg exif gps", "image/jpeg", dirtyJPEG, j, func(b []byte) (image.Image, error) { return jpeg.Decode(bytes.NewReader(b)) }},
		{"png clean", "image/png", p, p, func(b []byte) (image.Image, error) { return png.Decode(bytes.NewReader(b)) }},
		{"png text and exif", "image/png", dirtyPNG, p, func(b []byte) (image.Image, error) { return png.Decode(bytes.NewReader(b)) }},
		{"webp exif and xmp", "image/webp", dirtyWebP, cleanWebP, nil},
		{"webp clean", "image/webp", cleanWebP, cleanWebP, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := profiles.Strip(tc.typ, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range secrets {
				if bytes.Contains(out, s) {
					t.Errorf("%q is still in the photo", s)
				}
			}
			if tc.want != nil && !bytes.Equal(out, tc.want) {
				t.Errorf("got %d bytes %x\nwant %d bytes %x", len(out), out, len(tc.want), tc.want)
			}
			if tc.decode == nil {
				return
			}
			got, err := tc.decode(out)
			if err != nil {
				t.Fatalf("the stripped photo does not decode: %v", err)
			}
			orig, err := tc.decode(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.Bounds() != orig.Bounds() {
				t.Fatalf("bounds %v, want %v", got.Bounds(), orig.Bounds())
			}
			for y := range 12 {
				for x := range 16 {
					if got.At(x, y) != orig.At(x, y) {
						t.Fatalf("pixel %d,%d changed: %v, was %v", x, y, got.At(x, y), orig.At(x, y))
					}
				}
			}
		})
	}
	if !bytes.Contains(dirtyJPEG, []byte("SpyPhone")) || !bytes.Contains(dirtyPNG, []byte("Rue Secret")) {
		t.Fatal("the inputs lack the metadata the test looks for")
	}

	for _, bad := range []struct {
		typ string
		in  []byte
	}{
		{"image/jpeg", j[:len(j)/2]},
		{"image/jpeg", []byte{0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF}},
		{"image/png", p[:40]},
		{"image/png", append(append([]byte{}, p[:ihdrEnd-1]...), 0)}, // bad CRC
		{"image/webp", riff(webpChunk("VP8X", "short"))},
		{"image/webp", []byte("RIFF\xff\xff\xff\xffWEBP")},
		{"image/gif", []byte("GIF89a")},
	} {
		if _, err := profiles.Strip(bad.typ, bad.in); !errors.Is(err, profiles.ErrMediaType) {
			t.Errorf("%s of %d bytes: %v, want ErrMediaType", bad.typ, len(bad.in), err)
		}
	}
}

func FuzzStrip(f *testing.F) {
	var j, p bytes.Buffer
	_ = jpeg.Encode(&j, testImage(), nil)
	_ = png.Encode(&p, testImage())
	f.Add(j.Bytes())
	f.Add(append([]byte{0xFF, 0xD8}, append(exifGPS(), j.Bytes()[2:]...)...))
	f.Add(p.Bytes())
	f.Add(riff(webpChunk("VP8X", "\x0c\x00\x00\x00\x00\x00\x00\x00\x00\x00"), webpChunk("EXIF", "x")))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, typ := range []string{"image/jpeg", "image/png", "image/webp"} {
			out, err := profiles.Strip(typ, data)
			if err != nil {
				continue
			}
			if len(out) > len(data) {
				t.Fatalf("%s grew from %d to %d bytes", typ, len(data), len(out))
			}
			again, err := profiles.Strip(typ, out)
			if err != nil || !bytes.Equal(again, out) {
				t.Fatalf("%s: stripping twice changes the photo (%v)", typ, err)
			}
		}
	})
}

// An upload is stored without its metadata: what comes back has no EXIF.
func TestPhotoUploadLosesMetadata(t *testing.T) {
	ctx, _, keys, _, c := startAPI(t)
	admin, _, _ := keys.Create(ctx, auth.Admin, "", "root")
	user, key := c.register(admin, `{"name":"Exif Owner","visibility":{"photo":"public"}}`)
	var plain bytes.Buffer
	if err := jpeg.Encode(&plain, testImage(), nil); err != nil {
		t.Fatal(err)
	}
	dirty := append(append([]byte{0xFF, 0xD8}, exifGPS()...), plain.Bytes()[2:]...)
	if code, body := c.do("PUT", "/v1/users/"+user.ID+"/photo", key, dirty); code != 200 {
		t.Fatalf("upload: %d %s", code, body)
	}
	code, body := c.do("GET", "/v1/profiles/"+user.ID+"/photo", "", nil)
	if code != 200 || body != plain.String() {
		t.Errorf("public photo: %d, %d bytes; want the %d bytes without EXIF", code, len(body), plain.Len())
	}
	if code, body := c.do("PUT", "/v1/users/"+user.ID+"/photo", key, []byte("\x89PNG\r\n\x1a\nnot really")); code != 415 {
		t.Errorf("a PNG that does not parse: %d %s", code, body)
	}
}
