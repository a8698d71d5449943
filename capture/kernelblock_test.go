package capture

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/netip"
	"testing"

	"github.com/synscope/synscope/internal/kevent"
)

// ngTestBlock frames a little-endian pcapng block.
func ngTestBlock(typ uint32, body []byte) []byte {
	body = append(body, make([]byte, (4-len(body)%4)%4)...)
	n := uint32(12 + len(body))
	b := binary.LittleEndian.AppendUint32(nil, typ)
	b = binary.LittleEndian.AppendUint32(b, n)
	b = append(b, body...)
	return binary.LittleEndian.AppendUint32(b, n)
}

// kernelBlockCapture is a pcapng with one of synscope's kernel evidence
// custom blocks, another tool's custom block, and a packet.
func kernelBlockCapture(ev *kevent.Event) []byte {
	shb := binary.LittleEndian.AppendUint32(nil, 0x1a2b3c4d)
	shb = binary.LittleEndian.AppendUint16(shb, 1)
	shb = binary.LittleEndian.AppendUint16(shb, 0)
	shb = binary.LittleEndian.AppendUint64(shb, ^uint64(0))
	idb := binary.LittleEndian.AppendUint16(nil, 1)
	idb = binary.LittleEndian.AppendUint16(idb, 0)
	idb = binary.LittleEndian.AppendUint32(idb, 65535)
	ours := binary.LittleEndian.AppendUint32(nil, kevent.PEN)
	ours = kevent.AppendCustomData(ours, ev.Time, kevent.AppendEvent(nil, ev))
	foreign := binary.LittleEndian.AppendUint32(nil, 12345)
	foreign = append(foreign, "not ours"...)
	frame := make([]byte, 60)
	epb := binary.LittleEndian.AppendUint32(nil, 0)
	epb = binary.LittleEndian.AppendUint32(epb, 0)
	epb = binary.LittleEndian.AppendUint32(epb, 1)
	epb = binary.LittleEndian.AppendUint32(epb, 60)
	epb = binary.LittleEndian.AppendUint32(epb, 60)
	epb = append(epb, frame...)
	var b []byte
	b = append(b, ngTestBlock(0x0a0d0d0a, shb)...)
	b = append(b, ngTestBlock(1, idb)...)
	b = append(b, ngTestBlock(0xbad, ours)...)
	b = append(b, ngTestBlock(0xbad, foreign)...)
	b = append(b, ngTestBlock(0x40000bad, foreign)...)
	return append(b, ngTestBlock(6, epb)...)
}

func TestPcapngKernelCustomBlocks(t *testing.T) {
	ev := kevent.Event{Kind: kevent.KindDrop, Time: 1_700_000_000_000_000_000, Src: netip.MustParseAddrPort("192.0.2.1:1"),
		Dst: netip.MustParseAddrPort("192.0.2.2:80"), Flags: 2, Seq: 7, ReasonName: "NETFILTER_DROP"}
	src, err := NewReader(bytes.NewReader(kernelBlockCapture(&ev)), "k.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	var p Packet
	if err := src.Next(&p); err != nil {
		t.Fatal(err)
	}
	var got kevent.Event
	if p.LinkType != kevent.LinkType || p.Time != ev.Time || p.Num != 1 || kevent.ParseEvent(p.Data, &got) != nil || got != ev {
		t.Fatalf("first record %+v (event %+v)", p, got)
	}
	if err := src.Next(&p); err != nil || p.LinkType != 1 || p.Num != 2 || len(p.Data) != 60 {
		t.Fatalf("second record %+v, %v: other tools' custom blocks must be skipped", p, err)
	}
	if err := src.Next(&p); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}
