package capture

import (
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// Open opens a capture file, or stdin for "-". The format comes from the magic
// number, never the extension: pcap (all four variants), pcapng, and either of
// them gzip-compressed.
func Open(path string) (Source, error) {
	if path == "-" {
		return NewReader(os.Stdin, path) // stdin is not ours to close
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if data := mapFile(f); data != nil {
		s, err := newMapped(f, data, path)
		if err != nil {
			munmap(data)
			f.Close()
			return nil, err
		}
		return s, nil
	}
	s, err := newFile(f, path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// NewReader reads a capture from r, detected as Open does. path only names the
// source in SourceInfo and errors. Close does not close r.
func NewReader(r io.Reader, path string) (Source, error) {
	return newFile(r, path, nil)
}

func newFile(r io.Reader, path string, c io.Closer) (Source, error) {
	return newFileWindow(window{r: r}, path, c)
}

func newFileWindow(w window, path string, c io.Closer) (Source, error) {
	f := &file{info: SourceInfo{Path: path}, closer: c, w: w}
	m, err := f.w.peek(4)
	if len(m) >= 2 && m[0] == 0x1f && m[1] == 0x8b {
		// The compressed window moves out, with the bytes already peeked.
		f.info.Compressed = true
		outer := new(window)
		*outer = f.w
		zr, zerr := gzip.NewReader(outer)
		if zerr != nil {
			return nil, f.short(0, 0, zerr, "truncated gzip header")
		}
		f.w = window{r: zr}
		m, err = f.w.peek(4)
	}
	switch {
	case len(m) == 0 && err == io.EOF:
		return nil, f.damage(0, 0, "empty file")
	case len(m) < 4 && err != io.EOF:
		return nil, f.short(0, 0, err, "") // a failed read, not an end
	case len(m) == 4 && binary.BigEndian.Uint32(m) == blockSHB:
		return newPcapng(f)
	case len(m) == 4:
		if o, nano, ok := pcapMagic(m); ok {
			return newPcap(f, o, nano)
		}
	}
	return nil, f.damage(0, 0, "not a pcap or pcapng file (magic %#x)", m)
}

// file is what the pcap and pcapng readers share: the window over the
// (decompressed) stream, the SourceInfo they keep and the error that ended them.
type file struct {
	w      window
	order  order
	info   SourceInfo
	closer io.Closer
	err    error
	prev   int64 // the previous packet's time
}

func (f *file) Info() *SourceInfo { return &f.info }

func (f *file) Close() error {
	c := f.closer
	f.closer = nil
	if c == nil {
		return nil
	}
	return c.Close()
}

// consume moves past n bytes that have been dealt with.
func (f *file) consume(n int) {
	f.w.skip(n)
	f.info.Bytes = f.w.off
}

// count books a packet that is about to be handed out.
func (f *file) count(p *Packet) {
	// A timestamp that leaps far from its predecessor is damage more often
	// than a capture that was silent for a month: report it (the packet is
	// still read, with the time it carries).
	if f.info.Packets > 0 {
		if d := p.Time - f.prev; d > maxForwardJump || d < -maxBackwardJump {
			f.anomaly(p.Num, p.Offset, "timestamp %s jumps by %s from the previous packet's (read anyway)",
				time.Unix(0, p.Time).UTC().Format(time.RFC3339Nano), time.Duration(d).Round(time.Second))
		}
	}
	f.prev = p.Time
	f.info.book(p.Time, 0) // consume counts the bytes
}

// Timestamp leaps beyond these are reported as anomalies.
const (
	maxForwardJump  = int64(30 * 24 * time.Hour)
	maxBackwardJump = int64(24 * time.Hour)
)

// addLinkType records a link type the first time a header declares it.
func (f *file) addLinkType(lt uint16) {
	if !slices.Contains(f.info.LinkTypes, lt) {
		f.info.LinkTypes = append(f.info.LinkTypes, lt)
	}
}

func (f *file) stop(err error) error {
	f.err, f.info.Err = err, err
	return err
}

// damage ends the source with a *FormatError for the record or block that
// starts at off and would have been packet num.
// anomaly notes damage that does not stop reading.
func (f *file) anomaly(num uint64, off int64, format string, args ...any) {
	f.info.Anomalies++
	if f.info.FirstAnomaly == nil {
		f.info.FirstAnomaly = &FormatError{Path: f.info.Path, Packet: num, Offset: off, Msg: fmt.Sprintf(format, args...)}
	}
}

func (f *file) damage(num uint64, off int64, format string, args ...any) error {
	return f.stop(&FormatError{Path: f.info.Path, Packet: num, Offset: off, Msg: fmt.Sprintf(format, args...)})
}

// short ends the source after a peek came back short with err: at EOF the
// record or block was cut off (format describes it), a failing gzip stream is
// damage too, and anything else is an I/O error.
func (f *file) short(num uint64, off int64, err error, format string, args ...any) error {
	switch {
	case err == io.EOF:
		return f.damage(num, off, format, args...)
	case f.compressedDamage(err):
		return f.damage(num, off, "decompressing: %v", err)
	}
	return f.stop(fmt.Errorf("reading %s: %w", f.info.Path, err))
}

// compressedDamage reports whether err says the gzip stream is corrupt or cut
// short, as opposed to the file being unreadable.
func (f *file) compressedDamage(err error) bool {
	var corrupt flate.CorruptInputError
	return f.info.Compressed && (errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &corrupt))
}
