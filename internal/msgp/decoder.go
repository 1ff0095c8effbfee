package msgp

import (
	"bytes"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Decoder reads MessagePack values from one byte slice with a pooled
// msgpack/v5 decoder. Get one with AcquireDecoder and give it back with
// ReleaseDecoder; nothing decoded may keep a reference to the Decoder.
type Decoder struct {
	*msgpack.Decoder
	r bytes.Reader
}

var decoders = sync.Pool{New: func() any {
	d := &Decoder{}
	d.Decoder = msgpack.NewDecoder(&d.r)
	return d
}}

// AcquireDecoder returns a decoder reading b.
func AcquireDecoder(b []byte) *Decoder {
	d := decoders.Get().(*Decoder)
	d.r.Reset(b)
	d.Reset(&d.r)
	return d
}

// ReleaseDecoder returns d to the pool; it forgets its input, so the pool
// keeps no caller's bytes alive.
func ReleaseDecoder(d *Decoder) {
	d.r.Reset(nil)
	decoders.Put(d)
}

// Unread returns how many bytes of the input are left.
func (d *Decoder) Unread() int { return d.r.Len() }
