package analyze

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
