// Package phone normalises written phone numbers, for call tracking: the
// numbers campaigns show and the numbers a telephony provider reports. It is
// pure: no I/O, no state.
package phone
