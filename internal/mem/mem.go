// Package mem holds the few memory instructions Go does not expose:
// prefetches, and stores that bypass the caches. They are assembly on amd64
// (calls Go cannot inline, a few nanoseconds each, so they pay only where
// each one saves a cache miss); elsewhere the prefetches do nothing and the
// stores are ordinary copies.
//
// A prefetch never faults: one for an address that is not mapped, or whose
// page the kernel has not mapped in yet, is dropped.
package mem

// touch writes a zero byte in every page of b (all zero), so that the
// kernel maps them in: every 4 KiB, the smallest page size (larger pages
// just get more than one write).
func touch(b []byte) {
	for i := 0; i < len(b); i += 4096 {
		b[i] = 0
	}
	if len(b) > 0 {
		b[len(b)-1] = 0
	}
}
