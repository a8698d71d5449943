//go:build !amd64

package analyze

import "unsafe"

func prefetch(addr uintptr) {}

func prefetchw(addr uintptr) {}

func storeNT128(dst, src unsafe.Pointer) { *(*[128]byte)(dst) = *(*[128]byte)(src) }

func storeFence() {}
