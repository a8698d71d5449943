// Package capture owns packet sources: pcap and pcapng files (plain or
// gzip-compressed, from a path or stdin), the merge of several files into one
// capture, and, later, live engines. It emits timestamped raw frames with their
// link type; it does not decode them (that is analyze's job).
//
// The file readers are our own rather than pcapgo's: a damaged capture must be
// reported with its packet number and exact byte offset, and the hot path must
// hand out records without a copy or an allocation. pcapgo stays in the tests
// as the reference the readers are checked against, and writes pcapng evidence.
package capture

import (
	"errors"
	"fmt"
)

// Packet is one captured frame. Data aliases the source's buffer and is valid
// only until the next call to Next on the same source: copy what you keep.
type Packet struct {
	Data     []byte
	Time     int64  // capture time, nanoseconds since the Unix epoch
	OrigLen  int    // length on the wire (>= len(Data))
	LinkType uint16 // LINKTYPE_* value (tcpdump.org/linktypes.html)
	Num      uint64 // 1-based record number within its source
	Offset   int64  // byte offset of the record in the (decompressed) source
	Source   int    // index of the source in this run (Merge order)
	IfIndex  int    // pcapng interface id (0 for pcap)
}

// Source yields packets. Next returns io.EOF at a clean end, a *FormatError
// when the input is damaged (the packets before it stay valid), or another
// error for I/O failures.
type Source interface {
	Next(p *Packet) error
	Info() *SourceInfo
	Close() error
}

// SourceInfo describes one source and what was read from it. The reader keeps
// it up to date as it reads (Packets, First, Last, LinkTypes, Err).
type SourceInfo struct {
	Path       string   // as given by the user ("-" for stdin)
	Format     string   // "pcap" or "pcapng"
	Compressed bool     // gzip
	LinkTypes  []uint16 // distinct link types seen in headers, in order of appearance
	Snaplen    uint32   // pcap header snaplen, or the first interface's for pcapng
	Nanosecond bool     // pcap: nanosecond magic; pcapng: the first interface resolves below 1 µs
	Packets    uint64   // records read successfully
	First      int64    // capture time of the earliest packet (ns), 0 if none
	Last       int64    // capture time of the latest packet (ns), 0 if none
	Bytes      int64    // bytes consumed from the (decompressed) source
	Err        error    // the error that ended the source early, if any
	// Anomalies counts records that break the format but could still be
	// read (a record longer than the declared snap length, which tcpdump
	// and Wireshark read anyway); FirstAnomaly says where the first was.
	Anomalies    uint64
	FirstAnomaly *FormatError
}

// book counts a packet of n bytes at capture time t (the live engines, and
// a file's reader after checking the order: file.count).
func (in *SourceInfo) book(t int64, n int) {
	if in.Packets == 0 || t < in.First {
		in.First = t
	}
	in.Last = max(in.Last, t)
	in.Packets++
	in.Bytes += int64(n)
}

// FormatError is damage in a capture file: where it is and what is wrong.
type FormatError struct {
	Path   string
	Packet uint64 // number of the record that could not be read (1-based); 0 for the file header
	Offset int64  // byte offset in the (decompressed) source where the bad record or block starts
	Msg    string
}

func (e *FormatError) Error() string {
	if e.Packet == 0 {
		return fmt.Sprintf("reading %s: at byte %d: %s", e.Path, e.Offset, e.Msg)
	}
	return fmt.Sprintf("reading %s: packet %d at byte %d: %s", e.Path, e.Packet, e.Offset, e.Msg)
}

// IsFormatError reports whether err is (or wraps) a *FormatError.
func IsFormatError(err error) bool {
	var fe *FormatError
	return errors.As(err, &fe)
}

// MaxRecordLen is the largest record a reader accepts (tcpdump's and
// Wireshark's own maximum snap length); longer records are damage.
const MaxRecordLen = 256 * 1024
