package testgen

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Frame is an IP datagram on its way into a capture file.
type Frame struct {
	IP       []byte
	V6       bool
	Src, Dst net.HardwareAddr
	Outgoing bool // sent by the server side, where the capture is taken (SLL packet type)
	c        *Capture
}

func (f Frame) etherType() layers.EthernetType {
	if f.V6 {
		return layers.EthernetTypeIPv6
	}
	return layers.EthernetTypeIPv4
}

// Link is a link-layer encapsulation and the link type of the file it goes in.
type Link struct {
	Type layers.LinkType
	Wrap func(Frame) []byte
}

// Ethernet frames (LINKTYPE_ETHERNET), padded to 60 bytes as on the wire.
func Ethernet() Link {
	return Link{Type: layers.LinkTypeEthernet, Wrap: func(f Frame) []byte {
		return serialize(&layers.Ethernet{SrcMAC: f.Src, DstMAC: f.Dst, EthernetType: f.etherType()}, gopacket.Payload(f.IP))
	}}
}

// VLAN tags the frame with one 802.1Q tag, or with an 802.1ad outer tag and
// an 802.1Q inner tag (QinQ) when given two IDs.
func VLAN(ids ...uint16) Link {
	return Link{Type: layers.LinkTypeEthernet, Wrap: func(f Frame) []byte {
		ls := []gopacket.SerializableLayer{}
		first := layers.EthernetTypeDot1Q
		if len(ids) > 1 {
			first = layers.EthernetTypeQinQ
		}
		ls = append(ls, &layers.Ethernet{SrcMAC: f.Src, DstMAC: f.Dst, EthernetType: first})
		for i, id := range ids {
			next := layers.EthernetTypeDot1Q
			if i == len(ids)-1 {
				next = f.etherType()
			}
			ls = append(ls, &layers.Dot1Q{VLANIdentifier: id, Type: next})
		}
		return serialize(append(ls, gopacket.Payload(f.IP))...)
	}}
}

// MPLS pushes a label stack (first label outermost) inside Ethernet.
func MPLS(labels ...uint32) Link {
	return Link{Type: layers.LinkTypeEthernet, Wrap: func(f Frame) []byte {
		ls := []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: f.Src, DstMAC: f.Dst, EthernetType: layers.EthernetTypeMPLSUnicast}}
		for i, l := range labels {
			ls = append(ls, &layers.MPLS{Label: l, StackBottom: i == len(labels)-1, TTL: 64})
		}
		return serialize(append(ls, gopacket.Payload(f.IP))...)
	}}
}

// Tunnel endpoints of the GRE and IP-in-IP encapsulations.
var (
	tunnelClient = netip.MustParseAddr("203.0.113.1")
	tunnelServer = netip.MustParseAddr("203.0.113.2")
)

func (f Frame) outerIPv4(proto layers.IPProtocol) *layers.IPv4 {
	src, dst := tunnelClient, tunnelServer
	if f.Outgoing {
		src, dst = dst, src
	}
	id := f.c.ipid
	f.c.ipid++
	return &layers.IPv4{Version: 4, IHL: 5, Id: id, Flags: layers.IPv4DontFragment, TTL: 64,
		Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
}

// GRE carries the datagram in GRE over an outer IPv4 header, in Ethernet.
func GRE() Link {
	return Link{Type: layers.LinkTypeEthernet, Wrap: func(f Frame) []byte {
		return serialize(
			&layers.Ethernet{SrcMAC: f.Src, DstMAC: f.Dst, EthernetType: layers.EthernetTypeIPv4},
			f.outerIPv4(layers.IPProtocolGRE),
			&layers.GRE{Protocol: f.etherType()},
			gopacket.Payload(f.IP))
	}}
}

// IPIP carries the datagram in an outer IPv4 header (protocol 4, or 41 for
// IPv6), in Ethernet.
func IPIP() Link {
	return Link{Type: layers.LinkTypeEthernet, Wrap: func(f Frame) []byte {
		proto := layers.IPProtocolIPv4
		if f.V6 {
			proto = layers.IPProtocolIPv6
		}
		return serialize(
			&layers.Ethernet{SrcMAC: f.Src, DstMAC: f.Dst, EthernetType: layers.EthernetTypeIPv4},
			f.outerIPv4(proto),
			gopacket.Payload(f.IP))
	}}
}

// LLCSNAP frames the datagram as IEEE 802.3 (length field) with an LLC
// header (AA AA 03) and a SNAP header (OUI 0, ethertype).
func LLCSNAP() Link {
	return Link{Type: layers.LinkTypeEthernet, Wrap: func(f Frame) []byte {
		return serialize(
			&layers.Ethernet{SrcMAC: f.Src, DstMAC: f.Dst, EthernetType: layers.EthernetTypeLLC},
			&layers.LLC{DSAP: 0xaa, SSAP: 0xaa, Control: 3},
			&layers.SNAP{OrganizationalCode: []byte{0, 0, 0}, Type: f.etherType()},
			gopacket.Payload(f.IP))
	}}
}

// Raw is LINKTYPE_RAW (101): the IP datagram with no link header.
func Raw() Link {
	return Link{Type: layers.LinkTypeRaw, Wrap: func(f Frame) []byte { return append([]byte(nil), f.IP...) }}
}

// Null is BSD loopback (LINKTYPE_NULL): a 4-byte address family in the
// capturing host's byte order, given here.
func Null(order binary.AppendByteOrder) Link {
	return Link{Type: layers.LinkTypeNull, Wrap: func(f Frame) []byte { return afHeader(order, f) }}
}

// Loop is OpenBSD loopback (LINKTYPE_LOOP, 108): the address family in
// network byte order.
func Loop() Link {
	return Link{Type: layers.LinkTypeLoop, Wrap: func(f Frame) []byte { return afHeader(binary.BigEndian, f) }}
}

func afHeader(order binary.AppendByteOrder, f Frame) []byte {
	af := uint32(2) // AF_INET
	if f.V6 {
		af = 30 // AF_INET6 as on Darwin and FreeBSD's loopback captures
	}
	b := order.AppendUint32(nil, af)
	return append(b, f.IP...)
}

// SLL packet types.
const (
	sllHost     = 0 // to us
	sllOutgoing = 4 // sent by us
)

// SLL is Linux cooked capture v1 (LINKTYPE_LINUX_SLL, 113), as tcpdump -i
// any writes it. gopacket has no serializer for it: the 16-byte header is
// assembled here.
func SLL() Link {
	return Link{Type: layers.LinkTypeLinuxSLL, Wrap: func(f Frame) []byte {
		h := make([]byte, 16, 16+len(f.IP))
		pt := uint16(sllHost)
		if f.Outgoing {
			pt = sllOutgoing
		}
		binary.BigEndian.PutUint16(h[0:], pt)
		binary.BigEndian.PutUint16(h[2:], 1) // ARPHRD_ETHER
		binary.BigEndian.PutUint16(h[4:], 6) // address length
		copy(h[6:14], f.Src)
		binary.BigEndian.PutUint16(h[14:], uint16(f.etherType()))
		return append(h, f.IP...)
	}}
}

// SLL2 is Linux cooked capture v2 (LINKTYPE_LINUX_SLL2, 276): the 20-byte
// header is assembled by hand.
func SLL2(ifindex uint32) Link {
	return Link{Type: layers.LinkType(276), Wrap: func(f Frame) []byte {
		h := make([]byte, 20, 20+len(f.IP))
		binary.BigEndian.PutUint16(h[0:], uint16(f.etherType()))
		// h[2:4] reserved, zero
		binary.BigEndian.PutUint32(h[4:], ifindex)
		binary.BigEndian.PutUint16(h[8:], 1) // ARPHRD_ETHER
		h[10] = sllHost
		if f.Outgoing {
			h[10] = sllOutgoing
		}
		h[11] = 6
		copy(h[12:20], f.Src)
		return append(h, f.IP...)
	}}
}
