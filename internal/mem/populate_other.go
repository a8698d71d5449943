//go:build !linux

package mem

// Populate has the pages of b, all zero, mapped in now, by writing a byte
// of each.
func Populate(b []byte) { touch(b) }
