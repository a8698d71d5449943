//go:build !amd64

package analyze

func prefetch(addr uintptr) {}

func prefetchw(addr uintptr) {}
