package capture

import (
	"io"
	"os"
)

// mmapMin is the smallest file worth mapping; below it a read is as cheap.
const mmapMin = 1 << 20

// mapFile maps a regular file read-only, so records are handed out straight
// from the page cache: no read syscalls and no copy (tcpdump copies every
// byte through stdio). It returns nil when the file cannot be mapped, and the
// caller reads it instead.
func mapFile(f *os.File) []byte {
	if os.Getenv("SYNSCOPE_NO_MMAP") != "" { // for benchmarks: the read path
		return nil
	}
	least := int64(mmapMin)
	if _, forced := ParallelSetting(); forced > 0 {
		least = 1 // the tests read small files in parallel, hence mapped
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() < least || st.Size() != int64(int(st.Size())) {
		return nil
	}
	data, err := mmapFile(f, int(st.Size()))
	if err != nil {
		return nil
	}
	return data
}

// mapped closes a mapped file: the mapping goes first, then the descriptor.
// Packets handed out earlier must not be used after Close.
type mapped struct {
	f    *os.File
	data []byte
}

func (m *mapped) Close() error {
	err := munmap(m.data)
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// newMapped reads a capture from a mapping: the window holds the whole file.
func newMapped(f *os.File, data []byte, path string) (Source, error) {
	return newFileWindow(window{buf: data, end: len(data), err: io.EOF, mapped: true}, path, &mapped{f: f, data: data})
}
