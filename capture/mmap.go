package capture

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"unsafe"
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

// mapping is the whole mapped file (nil when it is read, not mapped).
func (f *file) mapping() []byte {
	if m, ok := f.closer.(*mapped); ok {
		return m.data
	}
	return nil
}

// MappedFault tells a memory fault from a bug's panic. r is a value
// recovered while debug.SetPanicOnFault is on: reading a mapped capture
// whose file shrank, past its new end, raises a fault (SIGBUS) at an
// address in the mapping, and the runtime's error for it has an Addr
// method (its text reads "invalid memory address or nil pointer
// dereference", as a nil dereference's does, which has none). For a fault,
// ok is true and err names the file among srcs whose mapping holds the
// address, with the byte offset that was gone; any other r gives ok false,
// to be raised again.
func MappedFault(r any, srcs []Source) (err error, ok bool) {
	re, isErr := r.(runtime.Error)
	if !isErr {
		return nil, false
	}
	fa, isFault := re.(interface{ Addr() uintptr })
	if !isFault {
		return nil, false
	}
	addr := fa.Addr()
	for _, s := range srcs {
		m, isMapped := s.(interface{ mapping() []byte })
		if !isMapped {
			continue
		}
		data := m.mapping()
		if len(data) == 0 {
			continue
		}
		base := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
		if addr >= base && addr-base < uintptr(len(data)) {
			in := s.Info()
			return fmt.Errorf("%s: the file changed while it was read (truncated?): packet %d, at byte offset %d, is gone (the file had %d bytes when opened)", in.Path, in.Packets+1, addr-base, len(data)), true
		}
	}
	return fmt.Errorf("a capture file changed while it was read (truncated?): memory fault at %#x", addr), true
}
