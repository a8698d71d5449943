//go:build !amd64

package mem

import "unsafe"

func Prefetch(addr uintptr)     {}
func Prefetch96(addr uintptr)   {}
func PrefetchW128(addr uintptr) {}

func StoreNT128(dst, src unsafe.Pointer) { *(*[128]byte)(dst) = *(*[128]byte)(src) }

func StoreFence() {}
