package capture

import (
	"encoding/binary"
	"io"
	"os"
)

// bufSize is the read-ahead of a window: one read call (or one round of
// inflate) then serves hundreds of packets. A window starts at minBuf and
// grows to bufSize only once the stream proves longer, so that a merge of
// many small files stays small.
const (
	minBuf  = 64 << 10
	bufSize = 1 << 20
)

// window is a read-ahead buffer over a stream, shared by the pcap and pcapng
// readers. peek hands out slices of the buffer itself, so a record costs no
// copy; those bytes stay put until a later peek has to refill, which only
// happens in the next call to Next.
type window struct {
	r   io.Reader
	buf []byte
	pos int   // first unconsumed byte in buf
	end int   // end of the bytes read into buf
	off int64 // stream offset of buf[pos]
	err error // what ended the stream; reported once the buffered bytes run out

	// mapped: buf is a memory-mapped file. released is how far its pages
	// have been handed back, so the mapping does not pile up in our RSS.
	mapped   bool
	released int
	// held: pages are released by someone else (Chunks.Release).
	held bool
}

// releaseChunk is how much of a mapping is read before its pages are dropped.
const releaseChunk = 8 << 20

// peek returns the next n bytes without consuming them. It returns fewer only
// when the stream ended first, together with the reason (io.EOF at a clean end).
func (w *window) peek(n int) ([]byte, error) {
	if w.end-w.pos >= n {
		return w.buf[w.pos : w.pos+n], nil
	}
	return w.fill(n)
}

func (w *window) fill(n int) ([]byte, error) {
	if w.pos+n > len(w.buf) {
		buf := w.buf
		if size := min(max(4*len(buf), minBuf), bufSize); size > len(buf) || n > len(buf) || w.mapped {
			buf = make([]byte, max(n, size)) // a mapping is read-only: never compact into it
		}
		w.end = copy(buf, w.buf[w.pos:w.end])
		w.buf, w.pos = buf, 0
		w.mapped, w.released = false, 0 // no longer the mapping
	}
	// A reader that keeps returning nothing would spin here forever.
	for empty := 0; w.end-w.pos < n && w.err == nil; {
		m, err := w.r.Read(w.buf[w.end:])
		w.end += m
		switch {
		case err != nil:
			w.err = err
		case m == 0:
			if empty++; empty == 100 {
				w.err = io.ErrNoProgress
			}
		}
	}
	if w.end-w.pos >= n {
		return w.buf[w.pos : w.pos+n], nil
	}
	return w.buf[w.pos:w.end], w.err
}

func (w *window) skip(n int) {
	// Bytes before the record being consumed are no longer referenced (a
	// packet's data is valid only until the next call to Next).
	if w.mapped && !w.held && w.pos-w.released >= releaseChunk {
		end := w.pos &^ (os.Getpagesize() - 1)
		release(w.buf[w.released:end])
		w.released = end
	}
	w.pos += n
	w.off += int64(n)
}

// Read and ReadByte let a window feed a gzip.Reader: the magic bytes peeked
// during detection are not lost, and inflate reads through the large buffer
// instead of the 4 KiB bufio.Reader gzip would otherwise add.
func (w *window) Read(p []byte) (int, error) {
	if w.pos == w.end {
		if b, err := w.fill(1); len(b) == 0 {
			return 0, err
		}
	}
	n := copy(p, w.buf[w.pos:w.end])
	w.skip(n)
	return n, nil
}

func (w *window) ReadByte() (byte, error) {
	if w.pos == w.end {
		if b, err := w.fill(1); len(b) == 0 {
			return 0, err
		}
	}
	c := w.buf[w.pos]
	w.skip(1)
	return c, nil
}

// order decodes the file's integers. A bool rather than a binary.ByteOrder:
// the interface call per field shows on the per-packet path.
type order bool

const bigEndian order = true

func (o order) u16(b []byte) uint16 {
	if o {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (o order) u32(b []byte) uint32 {
	if o {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

func (o order) u64(b []byte) uint64 {
	if o {
		return binary.BigEndian.Uint64(b)
	}
	return binary.LittleEndian.Uint64(b)
}
