// Package kevent is the wire format of kernel evidence: what the kernel's
// tracepoints said about a segment (a drop and its reason, a SYN-ACK
// retransmit, a reset sent or received) and samples of the watched network
// namespace's counters, sysctls and listening sockets.
//
// Kernel evidence travels through synscope as records of their own link type
// beside the packets, so it shares their clock and order and reaches the
// analyzer through the same path. `live --write` saves each record in the
// pcapng as a Custom Block (type 0x00000BAD, PEN, then CustomData), which
// tcpdump skips and Wireshark shows as a frame of its own (numbered, as
// synscope numbers it), so the file stays a plain packet capture to them
// while an offline re-read keeps the evidence. Every record starts with
// Magic and a version, so frames of another program's LINKTYPE_USER0 (or
// another tool's custom blocks) are never mistaken for ours.
//
// Events are a fixed binary layout (a drop storm can bring many per second);
// counter samples, one a second at most, are JSON.
package kevent

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/netip"
)

// LinkType is the pcap link type of kernel evidence records (LINKTYPE_USER0).
const LinkType = 147

// PEN is the Private Enterprise Number in synscope's pcapng custom blocks:
// 32473, the number IANA reserves for documentation and examples (RFC
// 5612), which no organisation's own blocks use. synscope has no PEN of its
// own; the Magic after it is what identifies the records.
const PEN = 32473

// AppendCustomData appends a pcapng custom block's data for a record taken
// at ts: the time (8 bytes) and the record's length (4 bytes), little-endian,
// then the record (the block pads it to 4 bytes, so the length is needed).
func AppendCustomData(b []byte, ts int64, record []byte) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(ts))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(record)))
	return append(b, record...)
}

// ParseCustomData is the inverse of AppendCustomData; ok is false when data
// is not one of synscope's records.
func ParseCustomData(data []byte) (ts int64, record []byte, ok bool) {
	if len(data) < 12 {
		return 0, nil, false
	}
	n := binary.LittleEndian.Uint32(data[8:])
	if uint64(n) > uint64(len(data)-12) || !Is(data[12:12+n]) {
		return 0, nil, false
	}
	return int64(binary.LittleEndian.Uint64(data)), data[12 : 12+n], true
}

// Magic and Version open every record.
const (
	Magic   = "SYNK"
	Version = 1
)

// Kind says what a record is.
type Kind uint8

const (
	KindDrop          Kind = 1 // skb:kfree_skb of a TCP segment
	KindSynAckRetrans Kind = 2 // tcp:tcp_retransmit_synack
	KindSendReset     Kind = 3 // tcp:tcp_send_reset
	KindRecvReset     Kind = 4 // tcp:tcp_receive_reset
	KindCounters      Kind = 5 // a Sample (JSON)
	KindNote          Kind = 6 // a Note (JSON): evidence that is missing and why
)

func (k Kind) String() string {
	switch k {
	case KindDrop:
		return "drop"
	case KindSynAckRetrans:
		return "synack_retransmit"
	case KindSendReset:
		return "send_reset"
	case KindRecvReset:
		return "receive_reset"
	case KindCounters:
		return "counters"
	case KindNote:
		return "note"
	}
	return "unknown"
}

// Event is one tracepoint hit. Src and Dst are those of the segment
// concerned, as it travels on the wire:
//   - drop: the dropped skb's source and destination;
//   - synack_retransmit: Src is the local (listening) end, Dst the peer;
//   - send_reset: the RST's source (local) and destination;
//   - receive_reset: Src is the peer that sent the RST, Dst the local end.
type Event struct {
	Kind  Kind
	Time  int64  // ns since the Unix epoch, the packets' clock
	Netns uint32 // network namespace inode
	Src   netip.AddrPort
	Dst   netip.AddrPort
	Flags uint8  // TCP flags of the segment (drop, send_reset); 0 if unknown
	State uint8  // TCP state of the socket (TCP_ESTABLISHED = 1, ...); 0 if none
	Seq   uint32 // sequence number of the segment (drop, send_reset)
	Ack   uint32
	// Reason is the raw enum value: skb_drop_reason for drops,
	// sk_rst_reason for resets sent (0 where the kernel gives none).
	Reason uint32
	// ReasonName is the enum constant without its prefix ("NETFILTER_DROP",
	// "TCP_RFC7323_TW_PAWS"), read from the running kernel's BTF.
	ReasonName string
	// Location is where the skb was freed, as symbol+offset from
	// /proc/kallsyms ("nft_do_chain+0x2c4"), or the raw address in hex.
	Location string
}

// Sample is a reading of a network namespace's counters and settings.
type Sample struct {
	Time  int64  `json:"time"`
	Netns uint32 `json:"netns"`
	// Counters from /proc/net/netstat and /proc/net/snmp, keyed
	// "TcpExt.ListenOverflows", "Tcp.OutRsts", "IpExt...".
	Counters map[string]uint64 `json:"counters"`
	// Sysctls, keyed by their name under /proc/sys with dots
	// ("net.ipv4.tcp_syncookies"), as the kernel prints them.
	Sysctls map[string]string `json:"sysctls,omitempty"`
	// ConntrackCount and ConntrackMax, -1 where conntrack is not loaded.
	ConntrackCount int64      `json:"conntrack_count"`
	ConntrackMax   int64      `json:"conntrack_max"`
	Listeners      []Listener `json:"listeners,omitempty"`
	// Addrs are the namespace's own addresses: they tell whether this host
	// was the client or the server of an attempt.
	Addrs []netip.Addr `json:"addrs,omitempty"`
	// Missing lists readings that could not be taken, and why.
	Missing []string `json:"missing,omitempty"`
}

// Listener is a listening TCP socket: its backlog (the accept queue's limit)
// and the number of connections waiting in it to be accepted.
type Listener struct {
	Addr    netip.AddrPort `json:"addr"`
	Backlog uint32         `json:"backlog"`
	Queue   uint32         `json:"queue"`
}

// Note says what evidence synscope could not collect and why ("no BTF:
// drop reasons are numbers", "not root: no kernel events").
type Note struct {
	Time    int64  `json:"time"`
	Source  string `json:"source"` // "tracepoints", "counters", ...
	Message string `json:"message"`
}

// event layout after the 6-byte header (magic, version, kind):
// time 8, netns 4, flags 1, state 1, family 1, pad 1, src 16+2, dst 16+2,
// seq 4, ack 4, reason 4, then reason name and location, each a 1-byte length
// and the bytes.
const eventFixed = 6 + 8 + 4 + 4 + 18 + 18 + 12

// AppendEvent appends e's record to b.
func AppendEvent(b []byte, e *Event) []byte {
	b = append(b, Magic...)
	b = append(b, Version, byte(e.Kind))
	b = binary.LittleEndian.AppendUint64(b, uint64(e.Time))
	b = binary.LittleEndian.AppendUint32(b, e.Netns)
	fam := byte(4)
	if e.Src.Addr().Is6() {
		fam = 6
	}
	b = append(b, e.Flags, e.State, fam, 0)
	b = appendAddrPort(b, e.Src)
	b = appendAddrPort(b, e.Dst)
	b = binary.LittleEndian.AppendUint32(b, e.Seq)
	b = binary.LittleEndian.AppendUint32(b, e.Ack)
	b = binary.LittleEndian.AppendUint32(b, e.Reason)
	b = appendString(b, e.ReasonName)
	b = appendString(b, e.Location)
	return b
}

func appendAddrPort(b []byte, ap netip.AddrPort) []byte {
	a := ap.Addr().As16()
	b = append(b, a[:]...)
	return binary.BigEndian.AppendUint16(b, ap.Port())
}

func appendString(b []byte, s string) []byte {
	if len(s) > 255 {
		s = s[:255]
	}
	b = append(b, byte(len(s)))
	return append(b, s...)
}

// AppendJSON appends a record of kind KindCounters or KindNote holding v.
func AppendJSON(b []byte, k Kind, v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	b = append(b, Magic...)
	b = append(b, Version, byte(k))
	return append(b, j...), nil
}

// Errors of Parse.
var (
	ErrNotKernel = errors.New("not a synscope kernel record")
	ErrVersion   = errors.New("unsupported kernel record version")
	ErrShort     = errors.New("truncated kernel record")
)

// Is reports whether data looks like a kernel evidence record.
func Is(data []byte) bool { return len(data) >= 6 && string(data[:4]) == Magic }

// RecordKind returns the kind of the record in data.
func RecordKind(data []byte) (Kind, error) {
	if !Is(data) {
		return 0, ErrNotKernel
	}
	if data[4] != Version {
		return 0, ErrVersion
	}
	return Kind(data[5]), nil
}

// ParseEvent decodes an event record (kinds 1 to 4) into e.
func ParseEvent(data []byte, e *Event) error {
	k, err := RecordKind(data)
	if err != nil {
		return err
	}
	if k < KindDrop || k > KindRecvReset {
		return ErrNotKernel
	}
	if len(data) < eventFixed+2 {
		return ErrShort
	}
	le := binary.LittleEndian
	e.Kind = k
	e.Time = int64(le.Uint64(data[6:]))
	e.Netns = le.Uint32(data[14:])
	e.Flags, e.State = data[18], data[19]
	// data[20] is the family (4 or 6), informative: addresses are 16 bytes
	e.Src = parseAddrPort(data[22:])
	e.Dst = parseAddrPort(data[40:])
	e.Seq = le.Uint32(data[58:])
	e.Ack = le.Uint32(data[62:])
	e.Reason = le.Uint32(data[66:])
	rest, ok := parseString(data[70:], &e.ReasonName)
	if !ok {
		return ErrShort
	}
	if _, ok = parseString(rest, &e.Location); !ok {
		return ErrShort
	}
	return nil
}

func parseAddrPort(b []byte) netip.AddrPort {
	// Always unmapped: a v4-mapped address on an IPv6 socket is IPv4 on
	// the wire, which is how the capture shows it.
	a := netip.AddrFrom16([16]byte(b[:16])).Unmap()
	return netip.AddrPortFrom(a, binary.BigEndian.Uint16(b[16:]))
}

// parseString reads a length-prefixed string into *dst, keeping the string
// *dst holds when it is the same (an Event reused for a run of records with
// the same reason allocates nothing), and returns what follows it.
func parseString(b []byte, dst *string) ([]byte, bool) {
	if len(b) < 1 || len(b) < 1+int(b[0]) {
		*dst = ""
		return b, false
	}
	n := int(b[0])
	if s := b[1 : 1+n]; string(s) != *dst {
		*dst = string(s)
	}
	return b[1+n:], true
}

// ParseJSON decodes a counters or note record into v (*Sample or *Note).
func ParseJSON(data []byte, v any) error {
	if _, err := RecordKind(data); err != nil {
		return err
	}
	return json.Unmarshal(data[6:], v)
}
