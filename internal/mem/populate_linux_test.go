package mem

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestPopulate: every page b spans is mapped in afterwards, those it only
// partly covers too, and none beyond; b stays zero.
func TestPopulate(t *testing.T) {
	page := unix.Getpagesize()
	m, err := unix.Mmap(-1, 0, 8*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	resident := func() []byte {
		v := make([]byte, 8)
		_, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&v[0])))
		if e != 0 {
			t.Fatal(e)
		}
		for i := range v {
			v[i] &= 1
		}
		return v
	}
	if r := resident(); string(r) != string(make([]byte, 8)) {
		t.Fatalf("fresh mapping resident: %v", r)
	}
	b := m[page+100 : 5*page+50] // pages 1-5, the first and last in part
	Populate(b)
	want := []byte{0, 1, 1, 1, 1, 1, 0, 0}
	if r := resident(); string(r) != string(want) {
		t.Fatalf("resident pages %v, want %v", r, want)
	}
	for i, c := range m {
		if c != 0 {
			t.Fatalf("byte %d is %d", i, c)
		}
	}
	Populate(m[:0])
	Populate(m[7*page : 7*page+1])
	if r := resident(); r[7] != 1 {
		t.Fatalf("one-byte slice: page not resident (%v)", r)
	}
}
