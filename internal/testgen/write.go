package testgen

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcapgo"
)

// Encode returns the capture file's bytes.
func (c *Capture) Encode() ([]byte, error) {
	pkts := c.Packets()
	for i, p := range pkts {
		lt, err := c.linkTypeOf(p.Iface)
		if err != nil {
			return nil, err
		}
		if p.link != lt {
			return nil, fmt.Errorf("%s: packet %d has link type %d on an interface of link type %d", c.Name, i+1, p.link, lt)
		}
	}
	var buf bytes.Buffer
	var err error
	switch c.Format {
	case PCAP, PCAPNanos:
		err = c.writePcap(&buf, pkts)
	case PCAPBigEndian:
		c.writePcapBE(&buf, pkts)
	case PCAPGzip:
		var raw bytes.Buffer
		if err = c.writePcap(&raw, pkts); err != nil {
			return nil, err
		}
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Name = strings.TrimSuffix(c.Name, ".gz") // ModTime stays zero: no wall clock in the file
		if _, err = zw.Write(raw.Bytes()); err != nil {
			return nil, err
		}
		err = zw.Close()
	case PCAPNG:
		err = c.writePcapng(&buf, pkts)
	case PCAPNGMulti:
		c.writePcapngMulti(&buf, pkts)
	default:
		err = fmt.Errorf("%s: unknown format %d", c.Name, c.Format)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	return buf.Bytes(), nil
}

func (p Packet) ci(c *Capture) gopacket.CaptureInfo {
	return gopacket.CaptureInfo{Timestamp: Base.Add(p.At), CaptureLength: len(p.Data), Length: p.OrigLen, InterfaceIndex: p.Iface}
}

func (c *Capture) writePcap(buf *bytes.Buffer, pkts []Packet) error {
	w := pcapgo.NewWriter(buf)
	if c.Format == PCAPNanos {
		w = pcapgo.NewWriterNanos(buf)
	}
	if err := w.WriteFileHeader(c.Snaplen, c.LinkType); err != nil {
		return err
	}
	for _, p := range pkts {
		if err := w.WritePacket(p.ci(c), p.Data); err != nil {
			return err
		}
	}
	return nil
}

// writePcapBE writes a classic pcap in big-endian byte order, as a SPARC or
// PowerPC host's libpcap does; pcapgo only writes little-endian.
func (c *Capture) writePcapBE(buf *bytes.Buffer, pkts []Packet) {
	be := binary.BigEndian
	var h []byte
	h = be.AppendUint32(h, 0xa1b2c3d4)
	h = be.AppendUint16(h, 2)
	h = be.AppendUint16(h, 4)
	h = be.AppendUint32(h, 0) // thiszone
	h = be.AppendUint32(h, 0) // sigfigs
	h = be.AppendUint32(h, c.Snaplen)
	h = be.AppendUint32(h, uint32(c.LinkType))
	buf.Write(h)
	for _, p := range pkts {
		ts := Base.Add(p.At)
		var r []byte
		r = be.AppendUint32(r, uint32(ts.Unix()))
		r = be.AppendUint32(r, uint32(ts.Nanosecond()/1000))
		r = be.AppendUint32(r, uint32(len(p.Data)))
		r = be.AppendUint32(r, uint32(p.OrigLen))
		buf.Write(r)
		buf.Write(p.Data)
	}
}

const ngApplication = "synscope internal/testgen"

func (c *Capture) writePcapng(buf *bytes.Buffer, pkts []Packet) error {
	intf := pcapgo.NgInterface{Name: "eth0", OS: "Linux", LinkType: c.LinkType, SnapLength: c.Snaplen, TimestampResolution: 9}
	opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: ngApplication, OS: "Linux"}}
	w, err := pcapgo.NewNgWriterInterface(buf, intf, opts)
	if err != nil {
		return err
	}
	for _, p := range pkts {
		if err := w.WritePacket(p.ci(c), p.Data); err != nil {
			return err
		}
	}
	return w.Flush()
}

// writePcapngMulti writes pcapng with one IDB per Iface, each with its own
// if_tsresol. pcapgo's NgWriter fixes every interface to nanoseconds, so the
// blocks are assembled here (little-endian).
func (c *Capture) writePcapngMulti(buf *bytes.Buffer, pkts []Packet) {
	le := binary.LittleEndian
	block := func(typ uint32, body []byte) {
		n := uint32(12 + len(body))
		buf.Write(le.AppendUint32(le.AppendUint32(nil, typ), n))
		buf.Write(body)
		buf.Write(le.AppendUint32(nil, n))
	}
	option := func(b []byte, code uint16, val []byte) []byte {
		b = le.AppendUint16(b, code)
		b = le.AppendUint16(b, uint16(len(val)))
		b = append(b, val...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	endOpts := func(b []byte) []byte { return append(b, 0, 0, 0, 0) }

	// Section header block.
	var shb []byte
	shb = le.AppendUint32(shb, 0x1a2b3c4d)
	shb = le.AppendUint16(shb, 1)
	shb = le.AppendUint16(shb, 0)
	shb = le.AppendUint64(shb, 0xffffffffffffffff)
	shb = option(shb, 4, []byte(ngApplication)) // shb_userappl
	block(0x0a0d0d0a, endOpts(shb))

	scale := make([]uint64, len(c.Ifaces))
	for i, in := range c.Ifaces {
		var idb []byte
		idb = le.AppendUint16(idb, uint16(in.LinkType))
		idb = le.AppendUint16(idb, 0)
		idb = le.AppendUint32(idb, c.Snaplen)
		idb = option(idb, 2, []byte(in.Name))    // if_name
		idb = option(idb, 9, []byte{in.TSResol}) // if_tsresol
		block(1, endOpts(idb))
		scale[i] = 1
		for e := in.TSResol; e < 9; e++ {
			scale[i] *= 10
		}
	}
	for _, p := range pkts {
		ts := uint64(Base.Add(p.At).UnixNano()) / scale[p.Iface]
		var epb []byte
		epb = le.AppendUint32(epb, uint32(p.Iface))
		epb = le.AppendUint32(epb, uint32(ts>>32))
		epb = le.AppendUint32(epb, uint32(ts))
		epb = le.AppendUint32(epb, uint32(len(p.Data)))
		epb = le.AppendUint32(epb, uint32(p.OrigLen))
		epb = append(epb, p.Data...)
		for len(epb)%4 != 0 {
			epb = append(epb, 0)
		}
		block(6, epb)
	}
}
