// Package testgen builds small, deterministic packet captures for synscope's
// tests: each scenario is written as a timeline of TCP segments between two
// endpoints (c.SYN, s.SYNACK, c.ACK, c.Data, ...), with sequence numbers,
// acknowledgements, timestamps (TSval/TSecr), window scaling and IP IDs kept
// the way a real stack keeps them. Segments are serialized with gopacket,
// wrapped in a link layer (Ethernet, VLAN, SLL, raw IP, ...) and written with
// pcapgo, or by hand where pcapgo cannot express the container (big-endian
// pcap, pcapng with per-interface timestamp resolution).
//
// Nothing here reads the clock or a random source: the same code always
// writes the same bytes, and testdata/pcaps holds the result (a test
// regenerates the files and compares them).
package testgen

import (
	"fmt"
	"math"
	"net/netip"
	"sort"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// Base is the wall-clock time every scenario's offsets are measured from.
var Base = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// Format is a capture file container.
type Format int

const (
	PCAP          Format = iota // classic pcap, little-endian, microsecond timestamps
	PCAPNanos                   // classic pcap, little-endian, nanosecond timestamps
	PCAPBigEndian               // classic pcap written big-endian, microseconds
	PCAPGzip                    // PCAP, gzip-compressed
	PCAPNG                      // pcapng, one interface (pcapgo's writer, nanoseconds)
	PCAPNGMulti                 // pcapng, several interfaces with their own if_tsresol
)

// Iface describes one pcapng interface (PCAPNGMulti).
type Iface struct {
	Name     string
	LinkType layers.LinkType
	TSResol  uint8 // decimal exponent: 6 = microseconds, 9 = nanoseconds
}

// Packet is one captured record.
type Packet struct {
	At      time.Duration // timestamp, relative to Base
	Data    []byte        // captured bytes (already cut to the snaplen)
	OrigLen int           // length on the wire
	Iface   int           // pcapng interface id
	link    layers.LinkType
	order   int // insertion order, the tie-breaker when sorting
}

// Capture is one file being built.
type Capture struct {
	Name      string // file name under testdata/pcaps
	Desc      string // one line for README.md: what the file shows
	Format    Format
	LinkType  layers.LinkType // link type of the file (pcap) or interface 0 (pcapng)
	Snaplen   uint32
	KeepOrder bool    // write packets in the order they were made, not by timestamp
	Ifaces    []Iface // PCAPNGMulti only
	NoExpect  bool    // leave this file's connections out of EXPECT.tsv

	// Via is the default set of capture paths for sides created after it is set.
	Via []Path

	pkts  []Packet
	conns []*Conn
	rng   rng
	ipid  uint16 // IP ID counter for packets that belong to no side (ICMP from routers, outer headers)
}

// NewCapture starts a capture with Ethernet framing and a 262144-byte snaplen.
func NewCapture(name, desc string) *Capture {
	c := &Capture{
		Name:     name,
		Desc:     desc,
		Format:   PCAP,
		LinkType: layers.LinkTypeEthernet,
		Snaplen:  262144,
		rng:      newRNG(name),
	}
	c.Via = []Path{{Link: Ethernet()}}
	c.ipid = uint16(c.rng.next())
	return c
}

// Path is one place a packet is recorded: a link encapsulation, a delay after
// the moment the segment is sent (mirror copies, tcpdump -i any duplicates),
// and the pcapng interface it is written on.
type Path struct {
	Link  Link
	Delay time.Duration
	Iface int
}

// Conn creates a connection between client and server ("ip:port", IPv6 as
// "[addr]:port"). isns optionally fixes the client's and the server's ISN;
// otherwise both come from the capture's deterministic generator.
func (c *Capture) Conn(client, server string, isns ...uint32) *Conn {
	cap, sap := netip.MustParseAddrPort(client), netip.MustParseAddrPort(server)
	if cap.Addr().Is4() != sap.Addr().Is4() {
		panic("testgen: client and server of different address families")
	}
	k := &Conn{cap: c}
	k.Client = newSide(k, cap, true)
	k.Server = newSide(k, sap, false)
	k.Client.peer, k.Server.peer = k.Server, k.Client
	k.Client.ISN, k.Server.ISN = c.rng.u32(), c.rng.u32()
	if len(isns) > 0 {
		k.Client.ISN = isns[0]
	}
	if len(isns) > 1 {
		k.Server.ISN = isns[1]
	}
	c.conns = append(c.conns, k)
	return k
}

// add records one frame on one path.
func (c *Capture) add(at time.Duration, iface int, lt layers.LinkType, frame []byte) {
	data := frame
	if uint32(len(data)) > c.Snaplen {
		data = data[:c.Snaplen]
	}
	c.pkts = append(c.pkts, Packet{At: at, Data: data, OrigLen: len(frame), Iface: iface, link: lt, order: len(c.pkts)})
}

// Packets returns the records in file order.
func (c *Capture) Packets() []Packet {
	out := append([]Packet(nil), c.pkts...)
	if !c.KeepOrder {
		sort.SliceStable(out, func(i, j int) bool {
			if out[i].At != out[j].At {
				return out[i].At < out[j].At
			}
			return out[i].order < out[j].order
		})
	}
	return out
}

// Conns returns the connections in the order they were created.
func (c *Capture) Conns() []*Conn { return c.conns }

// linkTypeOf returns the link type of a pcapng interface or of the file.
func (c *Capture) linkTypeOf(iface int) (layers.LinkType, error) {
	if c.Format == PCAPNGMulti {
		if iface < 0 || iface >= len(c.Ifaces) {
			return 0, fmt.Errorf("%s: packet on interface %d, file has %d", c.Name, iface, len(c.Ifaces))
		}
		return c.Ifaces[iface].LinkType, nil
	}
	if iface != 0 {
		return 0, fmt.Errorf("%s: packet on interface %d in a single-interface file", c.Name, iface)
	}
	return c.LinkType, nil
}

// rng is splitmix64: tiny, and its output is fixed forever (math/rand's
// streams are not promised to stay the same across Go releases).
type rng struct{ s uint64 }

func newRNG(seed string) rng {
	// FNV-1a of the seed string.
	h := uint64(14695981039346656037)
	for i := 0; i < len(seed); i++ {
		h ^= uint64(seed[i])
		h *= 1099511628211
	}
	return rng{s: h}
}

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (r *rng) u32() uint32 { return uint32(r.next() >> 32) }

// intn returns a value in [0, n).
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// jitter returns a duration in [-d, +d] with microsecond granularity.
func (r *rng) jitter(d time.Duration) time.Duration {
	us := int64(d / time.Microsecond)
	return time.Duration(int64(r.next()%uint64(2*us+1))-us) * time.Microsecond
}

// Time helpers for scenario timelines.
func sec(s float64) time.Duration { return time.Duration(math.Round(s*1e6)) * time.Microsecond }
func ms(m float64) time.Duration  { return time.Duration(math.Round(m*1e3)) * time.Microsecond }
func us(u int64) time.Duration    { return time.Duration(u) * time.Microsecond }
