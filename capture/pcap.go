package capture

import (
	"encoding/binary"
	"io"
)

// Classic pcap: a 24-byte file header, then records of a 16-byte header and
// the captured bytes (tcpdump.org/manpages/pcap-savefile.5.html).
const (
	pcapFileHdr = 24
	pcapRecHdr  = 16
)

// pcapMagic tells the byte order and timestamp unit from the file's first
// four bytes.
func pcapMagic(m []byte) (o order, nano, ok bool) {
	switch binary.LittleEndian.Uint32(m) {
	case 0xa1b2c3d4:
		return !bigEndian, false, true
	case 0xa1b23c4d:
		return !bigEndian, true, true
	case 0xd4c3b2a1:
		return bigEndian, false, true
	case 0x4d3cb2a1:
		return bigEndian, true, true
	}
	return false, false, false
}

type pcapReader struct {
	file
	link     uint16
	fracUnit int64 // nanoseconds per unit of the timestamp's fraction field
}

func newPcap(f *file, o order, nano bool) (Source, error) {
	r := &pcapReader{file: *f, fracUnit: 1000}
	r.order, r.info.Format, r.info.Nanosecond = o, "pcap", nano
	if nano {
		r.fracUnit = 1
	}
	h, err := r.w.peek(pcapFileHdr)
	if len(h) < pcapFileHdr {
		return nil, r.short(0, 0, err, "truncated pcap file header: only %d of %d bytes", len(h), pcapFileHdr)
	}
	// libpcap and Wireshark refuse only versions before 2; 2.x minor
	// versions all share this record layout.
	if major := o.u16(h[4:]); major < 2 {
		return nil, r.damage(0, 0, "unsupported pcap version %d.%d", major, o.u16(h[6:]))
	}
	r.info.Snaplen = o.u32(h[16:])
	// The upper 16 bits of the link type field carry FCS length and flags.
	r.link = uint16(o.u32(h[20:]))
	r.addLinkType(r.link)
	r.consume(pcapFileHdr)
	return r, nil
}

func (r *pcapReader) Next(p *Packet) error {
	if r.err != nil {
		return r.err
	}
	num, off := r.info.Packets+1, r.w.off
	h, err := r.w.peek(pcapRecHdr)
	if len(h) < pcapRecHdr {
		if len(h) == 0 && err == io.EOF {
			return io.EOF
		}
		return r.short(num, off, err, "truncated record header: only %d of %d bytes left", len(h), pcapRecHdr)
	}
	caplen := r.order.u32(h[8:])
	if caplen > MaxRecordLen {
		return r.damage(num, off, "captured length %d exceeds the maximum of %d", caplen, MaxRecordLen)
	}
	// A record longer than the header's snaplen breaks the format, but
	// writers such as dpkt declare a small snaplen and store longer
	// records, which tcpdump and Wireshark read anyway: so do we, and say so.
	if s := r.info.Snaplen; s != 0 && caplen > s {
		r.longRecord(num, off, caplen)
	}
	n := pcapRecHdr + int(caplen)
	rec, err := r.w.peek(n)
	if len(rec) < n {
		return r.short(num, off, err, "truncated record: header says %d bytes, only %d left", caplen, len(rec)-pcapRecHdr)
	}
	*p = Packet{
		Data:     rec[pcapRecHdr:n:n],
		Time:     int64(r.order.u32(rec))*1e9 + int64(r.order.u32(rec[4:]))*r.fracUnit,
		OrigLen:  int(r.order.u32(rec[12:])),
		LinkType: r.link,
		Num:      num,
		Offset:   off,
	}
	// libpcap does not check caplen against the wire length either; a
	// record cannot have been longer on the wire than what was captured.
	p.OrigLen = max(p.OrigLen, int(caplen))
	r.consume(n)
	r.count(p)
	return nil
}

// longRecord notes a record longer than the file's snap length.
func (r *pcapReader) longRecord(num uint64, off int64, caplen uint32) {
	r.anomaly(num, off, "record of %d bytes is longer than the file's snap length %d (read anyway)", caplen, r.info.Snaplen)
}
