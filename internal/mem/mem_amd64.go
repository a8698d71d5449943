package mem

import "unsafe"

// Prefetch asks the CPU for the cache line at addr (PREFETCHT0), without
// waiting for it.
//
//go:noescape
func Prefetch(addr uintptr)

// Prefetch96 is Prefetch of every line holding a byte of [addr, addr+96]
// (three prefetches 48 bytes apart, whatever addr's alignment).
//
//go:noescape
func Prefetch96(addr uintptr)

// PrefetchW128 asks for the lines at addr and addr+64 in a state the CPU
// can write (PREFETCHW): a line another core read last comes back before
// the stores that need it.
//
//go:noescape
func PrefetchW128(addr uintptr)

// StoreNT128 copies the 128 bytes at src to dst (16-byte aligned) with
// non-temporal stores (MOVNTDQ): written to memory without reading dst's
// lines into the caches first. StoreFence orders them before later stores.
//
//go:noescape
func StoreNT128(dst, src unsafe.Pointer)

// StoreFence is SFENCE.
func StoreFence()
