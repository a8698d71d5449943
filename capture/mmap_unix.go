//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package capture

import (
	"os"

	"golang.org/x/sys/unix"
)

// mmapFile maps the first size bytes of f read-only and shared, and tells
// the kernel they will be read in order.
func mmapFile(f *os.File, size int) ([]byte, error) {
	data, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	_ = unix.Madvise(data, unix.MADV_SEQUENTIAL)
	return data, nil
}

func munmap(data []byte) error { return unix.Munmap(data) }

// release hands the mapped pages of b back: the walk is past them (they
// are read again from the page cache if touched).
func release(b []byte) { _ = unix.Madvise(b, unix.MADV_DONTNEED) }
