package analyze

import "unsafe"

// prefetch asks the CPU to load the cache line at addr, without waiting for
// it (PREFETCHT0): the tracker's tables are larger than the caches.
//
//go:noescape
func prefetch(addr uintptr)

// prefetchw asks the CPU for the cache line at addr in a state it can write
// (PREFETCHW), without waiting for it.
//
//go:noescape
func prefetchw(addr uintptr)

// storeNT128 copies the 128 bytes at src to dst (16-byte aligned) with
// non-temporal stores (MOVNTDQ): written to memory without reading dst's
// lines into the caches first. storeFence orders them before later stores.
//
//go:noescape
func storeNT128(dst, src unsafe.Pointer)

// storeFence is SFENCE.
func storeFence()
