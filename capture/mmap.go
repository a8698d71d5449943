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

// faultAddr returns the address of a memory fault: r is a value recovered
// while debug.SetPanicOnFault is on, and the runtime's error for a fault
// has an Addr method (its text reads "invalid memory address or nil
// pointer dereference", as a nil dereference's does, which has none).
func faultAddr(r any) (uintptr, bool) {
	re, isErr := r.(runtime.Error)
	if !isErr {
		return 0, false
	}
	fa, isFault := re.(interface{ Addr() uintptr })
	if !isFault {
		return 0, false
	}
	return fa.Addr(), true
}

// inMapping returns addr's offset in data, if it is there.
func inMapping(addr uintptr, data []byte) (int64, bool) {
	if len(data) == 0 {
		return 0, false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	if addr < base || addr-base >= uintptr(len(data)) {
		return 0, false
	}
	return int64(addr - base), true
}

// MappedFault tells a shrunk capture from a bug. r is a value recovered
// while debug.SetPanicOnFault is on: reading a mapped capture whose file
// shrank, past its new end, raises a fault (SIGBUS) at an address in the
// mapping. When r is such a fault in the mapping of one of srcs, ok is
// true and err names the file, the packet that is gone and its byte
// offset; any other r (a bug's panic, or a fault elsewhere) gives ok
// false, to be raised again.
func MappedFault(r any, srcs []Source) (err error, ok bool) {
	addr, isFault := faultAddr(r)
	if !isFault {
		return nil, false
	}
	for _, s := range srcs {
		m, isMapped := s.(interface{ mapping() []byte })
		if !isMapped {
			continue
		}
		data := m.mapping()
		off, in := inMapping(addr, data)
		if !in {
			continue
		}
		info := s.Info()
		if info.Compressed { // offsets in the file are not those of the records
			return fmt.Errorf("%s: the file changed while it was read (truncated?): byte offset %d is gone, after packet %d (the file had %d bytes when opened)", info.Path, off, info.Packets, len(data)), true
		}
		// A record is counted once its header is read (classic pcap): a
		// fault in its data is in the last packet counted.
		num := info.Packets + 1
		if off < info.Bytes {
			num = info.Packets
		}
		return fmt.Errorf("%s: the file changed while it was read (truncated?): packet %d, at byte offset %d, is gone (the file had %d bytes when opened)", info.Path, num, off, len(data)), true
	}
	return nil, false
}
