// Package device owns what a request says about the client: the device type,
// operating system and model (from User-Agent Client Hints first, then the
// User-Agent), whether it is a bot or a prefetch, its preferred language, and
// its address (the client IP behind trusted proxies, truncated before storage).
//
// Everything here runs on every pixel and ad request, so nothing allocates and
// nothing panics, whatever the input. Canonical names (device types, operating
// systems, languages) are string constants. OSVersion and Model, however, may
// point into the header bytes passed to Parse (no copy is made): a Device
// filled by Parse is valid only while those bytes are, which with fasthttp
// means until the handler returns. Encode or copy it (event.AppendMsgpack,
// strings.Clone) before then, and never hand it to a goroutine as is.
//
// Input is bounded: versions are cut to 16 bytes, models to 64, and values that
// are not printable ASCII are dropped.
package device
