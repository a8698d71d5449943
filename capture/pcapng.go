package capture

import (
	"encoding/binary"
	"io"
	"math/bits"

	"github.com/synscope/synscope/internal/kevent"
)

// pcapng (IETF draft-ietf-opsawg-pcapng): a sequence of blocks, each framed
// by its type and total length, with the length repeated as a trailer.
const (
	blockSHB = 0x0a0d0d0a // section header; a palindrome, so either byte order finds it
	blockIDB = 1          // interface description
	blockOPB = 2          // obsolete packet block
	blockSPB = 3          // simple packet block
	blockEPB = 6          // enhanced packet block
	blockCB  = 0x00000bad // custom block (copyable): synscope's kernel evidence

	byteOrderMagic = 0x1a2b3c4d

	// maxBlockLen bounds the buffer a block length from the file can demand.
	// Packet blocks stay far below it (MaxRecordLen); name resolution and
	// decryption secrets blocks may be large but not this large.
	maxBlockLen = 16 << 20

	optEnd      = 0
	optTSResol  = 9
	optTSOffset = 14
)

// minBlock is the shortest valid block of each type (header, fixed fields,
// trailer), with its name for errors.
func minBlock(typ uint32) (int, string) {
	switch typ {
	case blockSHB:
		return 28, "section header"
	case blockIDB:
		return 20, "interface description"
	case blockEPB:
		return 32, "enhanced packet"
	case blockOPB:
		return 32, "packet"
	case blockSPB:
		return 16, "simple packet"
	}
	return 12, "block"
}

type ngReader struct {
	file
	ifaces []ngIface // interfaces of the current section, by id
	last   int64     // time of the previous packet, for simple packet blocks
}

type ngIface struct {
	link    uint16
	snaplen uint32
	perSec  uint64 // timestamp units per second (if_tsresol)
	unitNs  int64  // nanoseconds per unit when that is a whole number, else 0
	offset  int64  // if_tsoffset, in nanoseconds
}

// time converts a timestamp in the interface's units to Unix nanoseconds.
func (f *ngIface) time(ts uint64) int64 {
	if f.unitNs != 0 {
		return int64(ts)*f.unitNs + f.offset
	}
	// Finer than a nanosecond, or a binary fraction: 128-bit intermediate
	// so large resolutions neither overflow nor lose the fraction.
	hi, lo := bits.Mul64(ts%f.perSec, 1e9)
	frac, _ := bits.Div64(hi, lo, f.perSec)
	return int64(ts/f.perSec)*1e9 + int64(frac) + f.offset
}

func newPcapng(f *file) (Source, error) {
	r := &ngReader{file: *f}
	r.info.Format = "pcapng"
	b, err := r.block(0, 0)
	if err != nil {
		return nil, err
	}
	if err := r.section(b, 0, 0); err != nil {
		return nil, err
	}
	r.consume(len(b))
	// Read up to the first packet so that Info has the interfaces' link
	// types before the first Next; damage found here is Next's to report.
	r.scan()
	return r, nil
}

func (r *ngReader) Next(p *Packet) error {
	b, num, off, err := r.scan()
	if err != nil {
		return err
	}
	typ := r.order.u32(b)
	var ifid, caplen, origlen uint32
	var ts int64
	var data []byte // from the packet data to the end of the block
	switch typ {
	case blockEPB, blockOPB:
		if typ == blockEPB {
			ifid = r.order.u32(b[8:])
		} else {
			ifid = uint32(r.order.u16(b[8:]))
		}
		if ifid >= uint32(len(r.ifaces)) {
			return r.damage(num, off, "packet refers to interface %d, but the section defines %d", ifid, len(r.ifaces))
		}
		ts = r.ifaces[ifid].time(uint64(r.order.u32(b[12:]))<<32 | uint64(r.order.u32(b[16:])))
		caplen, origlen, data = r.order.u32(b[20:]), r.order.u32(b[24:]), b[28:]
	case blockCB:
		// Kernel evidence (see kevent): a record of its own link type.
		ts, rec, _ := kevent.ParseCustomData(b[12 : len(b)-4])
		*p = Packet{Data: rec[:len(rec):len(rec)], Time: ts, OrigLen: len(rec), LinkType: kevent.LinkType, Num: num, Offset: off, IfIndex: -1}
		r.consume(len(b))
		r.count(p)
		return nil
	case blockSPB:
		if len(r.ifaces) == 0 {
			return r.damage(num, off, "simple packet block before any interface description")
		}
		// No timestamp, and no captured length: it is the wire length
		// cut to the snaplen, which the block must then hold.
		data, ts, origlen = b[12:], r.last, r.order.u32(b[8:])
		caplen = origlen
		if s := r.ifaces[0].snaplen; s != 0 {
			caplen = min(caplen, s)
		}
	}
	if caplen > MaxRecordLen {
		return r.damage(num, off, "captured length %d exceeds the maximum of %d", caplen, MaxRecordLen)
	}
	if s := r.ifaces[ifid].snaplen; s != 0 && caplen > s {
		r.anomaly(num, off, "record of %d bytes is longer than interface %d's snap length %d (read anyway)", caplen, ifid, s)
	}
	if room := len(data) - 4; int(caplen) > room {
		return r.damage(num, off, "captured length %d runs past the end of the block (room for %d)", caplen, room)
	}
	*p = Packet{
		Data:     data[:caplen:caplen],
		Time:     ts,
		OrigLen:  int(max(origlen, caplen)),
		LinkType: r.ifaces[ifid].link,
		Num:      num,
		Offset:   off,
		IfIndex:  int(ifid),
	}
	r.last = ts
	r.consume(len(b))
	r.count(p)
	return nil
}

// scan handles the blocks up to the next packet block and returns that one,
// still unconsumed, with the number and offset its packet will have.
func (r *ngReader) scan() (b []byte, num uint64, off int64, err error) {
	for r.err == nil {
		num, off = r.info.Packets+1, r.w.off
		if b, err = r.block(num, off); err != nil {
			return nil, num, off, err
		}
		switch r.order.u32(b) {
		case blockEPB, blockOPB, blockSPB:
			return b, num, off, nil
		case blockCB:
			if r.ours(b) {
				return b, num, off, nil
			}
		case blockSHB:
			err = r.section(b, num, off)
		case blockIDB:
			err = r.iface(b, num, off)
		}
		if err != nil {
			return nil, num, off, err
		}
		// Statistics, name resolution, secrets, custom and unknown blocks
		// carry nothing a packet needs.
		r.consume(len(b))
	}
	return nil, num, off, r.err
}

// ours reports whether a custom block holds synscope's kernel evidence.
func (r *ngReader) ours(b []byte) bool {
	if len(b) < 16 || r.order.u32(b[8:]) != kevent.PEN {
		return false
	}
	_, _, ok := kevent.ParseCustomData(b[12 : len(b)-4])
	return ok
}

// block returns the whole block at the read position once its framing is
// sound; a section header first sets the byte order for everything after it.
func (r *ngReader) block(num uint64, off int64) ([]byte, error) {
	h, err := r.w.peek(8)
	if len(h) < 8 {
		if len(h) == 0 && err == io.EOF {
			return nil, io.EOF
		}
		return nil, r.short(num, off, err, "truncated block header: only %d of 8 bytes left", len(h))
	}
	if r.order.u32(h) == blockSHB {
		if h, err = r.w.peek(12); len(h) < 12 {
			return nil, r.short(num, off, err, "truncated section header: only %d of 12 bytes left", len(h))
		}
		switch binary.LittleEndian.Uint32(h[8:]) {
		case byteOrderMagic:
			r.order = !bigEndian
		case bits.ReverseBytes32(byteOrderMagic):
			r.order = bigEndian
		default:
			return nil, r.damage(num, off, "bad byte-order magic %#x in section header", h[8:12])
		}
	}
	typ, n := r.order.u32(h), r.order.u32(h[4:])
	switch {
	case n < 12:
		return nil, r.damage(num, off, "block length %d is shorter than the minimum of 12", n)
	case n%4 != 0:
		return nil, r.damage(num, off, "block length %d is not a multiple of 4", n)
	case n > maxBlockLen:
		return nil, r.damage(num, off, "block length %d exceeds the maximum of %d", n, maxBlockLen)
	}
	b, err := r.w.peek(int(n))
	if len(b) < int(n) {
		return nil, r.short(num, off, err, "truncated block: header says %d bytes, only %d left", n, len(b))
	}
	if t := r.order.u32(b[n-4:]); t != n {
		return nil, r.damage(num, off, "block length mismatch: header says %d, trailer says %d", n, t)
	}
	if m, name := minBlock(typ); int(n) < m {
		return nil, r.damage(num, off, "%s block length %d is shorter than the minimum of %d", name, n, m)
	}
	return b, nil
}

// section starts a new section: interface ids start over.
func (r *ngReader) section(b []byte, num uint64, off int64) error {
	if major, minor := r.order.u16(b[12:]), r.order.u16(b[14:]); major != 1 {
		return r.damage(num, off, "unsupported pcapng version %d.%d", major, minor)
	}
	r.ifaces = r.ifaces[:0]
	return nil
}

func (r *ngReader) iface(b []byte, num uint64, off int64) error {
	f := ngIface{link: r.order.u16(b[8:]), snaplen: r.order.u32(b[12:]), perSec: 1e6, unitNs: 1e3}
	for opts := b[16 : len(b)-4]; len(opts) >= 4; {
		code, n := r.order.u16(opts), int(r.order.u16(opts[2:]))
		if code == optEnd {
			break
		}
		if 4+n > len(opts) {
			return r.damage(num, off, "interface option %d runs past the end of the block", code)
		}
		v := opts[4 : 4+n]
		switch {
		case code == optTSResol && n >= 1:
			if !f.setResolution(v[0]) {
				return r.damage(num, off, "unsupported timestamp resolution %#02x", v[0])
			}
		case code == optTSOffset && n >= 8:
			f.offset = int64(r.order.u64(v)) * 1e9
		}
		opts = opts[min(4+(n+3)&^3, len(opts)):]
	}
	if len(r.info.LinkTypes) == 0 {
		r.info.Snaplen = f.snaplen
		r.info.Nanosecond = f.perSec > 1e6
	}
	r.addLinkType(f.link)
	r.ifaces = append(r.ifaces, f)
	return nil
}

// setResolution applies if_tsresol: a negative power of 10, or of 2 when the
// high bit is set.
func (f *ngIface) setResolution(v byte) bool {
	e := uint64(v & 0x7f)
	switch {
	case v&0x80 != 0 && e <= 63:
		f.perSec = 1 << e
	case v&0x80 == 0 && e <= 19: // 10^19 is the largest power of 10 in a uint64
		f.perSec = 1
		for range e {
			f.perSec *= 10
		}
	default:
		return false
	}
	f.unitNs = 0
	if 1e9%f.perSec == 0 {
		f.unitNs = int64(1e9 / f.perSec)
	}
	return true
}
