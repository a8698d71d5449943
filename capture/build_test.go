package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// Builders for small captures, so that every field and every kind of damage
// can be laid out byte by byte.

var (
	le = binary.LittleEndian
	be = binary.BigEndian
)

// pcapFile is a classic pcap under construction.
type pcapFile struct {
	o    binary.AppendByteOrder
	buf  []byte
	nano bool
}

func newPcapFile(o binary.AppendByteOrder, nano bool, snaplen, link uint32) *pcapFile {
	magic := uint32(0xa1b2c3d4)
	if nano {
		magic = 0xa1b23c4d
	}
	f := &pcapFile{o: o, nano: nano}
	f.buf = o.AppendUint32(f.buf, magic)
	f.buf = o.AppendUint16(f.buf, 2)
	f.buf = o.AppendUint16(f.buf, 4)
	f.buf = append(f.buf, make([]byte, 8)...) // thiszone, sigfigs
	f.buf = o.AppendUint32(f.buf, snaplen)
	f.buf = o.AppendUint32(f.buf, link)
	return f
}

// add appends a record; frac is in the file's unit (µs or ns).
func (f *pcapFile) add(sec, frac uint32, data []byte, origlen uint32) *pcapFile {
	return f.addRaw(sec, frac, uint32(len(data)), origlen, data)
}

// addRaw appends a record whose caplen field need not match the data.
func (f *pcapFile) addRaw(sec, frac, caplen, origlen uint32, data []byte) *pcapFile {
	f.buf = f.o.AppendUint32(f.buf, sec)
	f.buf = f.o.AppendUint32(f.buf, frac)
	f.buf = f.o.AppendUint32(f.buf, caplen)
	f.buf = f.o.AppendUint32(f.buf, origlen)
	f.buf = append(f.buf, data...)
	return f
}

// ngFile is a pcapng file under construction. o is the byte order of the
// current section.
type ngFile struct {
	o   binary.AppendByteOrder
	buf []byte
}

func newNgFile(o binary.AppendByteOrder) *ngFile {
	return (&ngFile{}).shb(o)
}

func pad4(b []byte) []byte {
	return append(b, make([]byte, (4-len(b)%4)%4)...)
}

// block appends a block of type typ around body (padded to 4 bytes).
func (f *ngFile) block(typ uint32, body []byte) *ngFile {
	body = pad4(body)
	n := uint32(12 + len(body))
	f.buf = f.o.AppendUint32(f.buf, typ)
	f.buf = f.o.AppendUint32(f.buf, n)
	f.buf = append(f.buf, body...)
	f.buf = f.o.AppendUint32(f.buf, n)
	return f
}

func (f *ngFile) shb(o binary.AppendByteOrder) *ngFile {
	f.o = o
	var body []byte
	body = o.AppendUint32(body, byteOrderMagic)
	body = o.AppendUint16(body, 1)
	body = o.AppendUint16(body, 0)
	body = o.AppendUint64(body, ^uint64(0)) // section length unknown
	return f.block(blockSHB, body)
}

// opt encodes one option (code, length, padded value) in the section's order.
func (f *ngFile) opt(code uint16, v []byte) []byte {
	b := f.o.AppendUint16(nil, code)
	b = f.o.AppendUint16(b, uint16(len(v)))
	return pad4(append(b, v...))
}

func (f *ngFile) idb(link uint16, snaplen uint32, opts ...[]byte) *ngFile {
	body := f.o.AppendUint16(nil, link)
	body = f.o.AppendUint16(body, 0)
	body = f.o.AppendUint32(body, snaplen)
	for _, o := range opts {
		body = append(body, o...)
	}
	if len(opts) > 0 {
		body = append(body, 0, 0, 0, 0) // opt_endofopt
	}
	return f.block(blockIDB, body)
}

func (f *ngFile) epb(ifid uint32, ts uint64, data []byte, origlen uint32) *ngFile {
	body := f.o.AppendUint32(nil, ifid)
	return f.block(blockEPB, f.packetBody(body, ts, data, origlen))
}

func (f *ngFile) opb(ifid uint16, ts uint64, data []byte, origlen uint32) *ngFile {
	body := f.o.AppendUint16(nil, ifid)
	body = f.o.AppendUint16(body, 0) // drops
	return f.block(blockOPB, f.packetBody(body, ts, data, origlen))
}

func (f *ngFile) packetBody(body []byte, ts uint64, data []byte, origlen uint32) []byte {
	body = f.o.AppendUint32(body, uint32(ts>>32))
	body = f.o.AppendUint32(body, uint32(ts))
	body = f.o.AppendUint32(body, uint32(len(data)))
	body = f.o.AppendUint32(body, origlen)
	return append(body, data...)
}

func (f *ngFile) spb(data []byte, origlen uint32) *ngFile {
	return f.block(blockSPB, append(f.o.AppendUint32(nil, origlen), data...))
}

// frame returns n bytes that tell packets apart.
func frame(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i)
	}
	return b
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// readAll drains src, copying each packet's data out of the reader's buffer.
// err is nil at a clean end.
func readAll(src Source) ([]Packet, error) {
	var pkts []Packet
	for {
		var p Packet
		err := src.Next(&p)
		if errors.Is(err, io.EOF) {
			return pkts, nil
		}
		if err != nil {
			return pkts, err
		}
		p.Data = bytes.Clone(p.Data)
		pkts = append(pkts, p)
	}
}

func mustRead(t *testing.T, b []byte, path string) ([]Packet, *SourceInfo) {
	t.Helper()
	src, err := NewReader(bytes.NewReader(b), path)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	defer src.Close()
	pkts, err := readAll(src)
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	return pkts, src.Info()
}
