package mem

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Populate has the kernel map in the pages of b, all zero, now: one call
// instead of a fault at the first write to each page.
func Populate(b []byte) {
	page := unix.Getpagesize()
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	lo := int((uintptr(page) - p%uintptr(page)) % uintptr(page)) // b[lo] starts a page
	hi := lo + (len(b)-lo)/page*page
	if lo < hi && unix.Madvise(b[lo:hi], unix.MADV_POPULATE_WRITE) == nil {
		touch(b[:lo])
		touch(b[hi:])
		return
	}
	touch(b)
}
