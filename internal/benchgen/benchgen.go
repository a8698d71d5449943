// Package benchgen writes the large synthetic captures synscope's benchmark
// (make bench) runs on: a busy web server and a SYN flood. Both are
// byte-identical on every run (a seeded PCG, a fixed base time, no map
// iteration, no goroutines) and are written without per-packet allocation:
// every frame is built by hand in one reused buffer.
//
// Only documentation addresses appear on the server and client side: the
// server is 192.0.2.10, clients are in 198.51.100.0/24 and 203.0.113.0/24.
// The spoofed sources of the flood are random IPv4 addresses (nothing is ever
// sent on a network; they are bytes in a file).
//
// Checksums: every IPv4 header checksum is correct. TCP checksums are correct
// on everything the server received (client packets, flood SYNs); on what the
// server sent they are what a capture on a host with transmit checksum
// offload shows: the pseudo-header sum only (tcpdump -vv calls them
// "incorrect"), except the kernel's RST replies to SYNs for a closed port,
// which are checksummed in software.
package benchgen

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Version is recorded in the .sha256 sidecar of every generated file; a file
// written by another version is regenerated. Bump it whenever the bytes a
// Config produces change.
const Version = "benchgen/1"

// Base is time zero of every capture.
var Base = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// Server is the captured host.
var Server = [4]byte{192, 0, 2, 10}

// HealthChecker is the address of the load balancer's health checker.
var HealthChecker = [4]byte{203, 0, 113, 250}

// Config describes one capture. The zero values of the anomaly fields turn
// the anomaly off.
type Config struct {
	Name     string        // file name
	Seed     uint64        // PRNG seed
	Duration time.Duration // capture length: nothing at or after it is written
	Lead     time.Duration // connections start up to this long before the capture (seen mid-connection)
	ConnRate float64       // new client connections per second (Poisson)
	Clients  int           // client addresses (at most 507: the two client /24s minus the health checker)

	HTTPShare float64       // share of connections to :80 (the rest go to :443, TLS)
	KeepAlive time.Duration // the server closes a connection idle this long

	// SYNs to :443 sent in [DropStart, DropStart+DropLen) go unanswered with
	// probability DropProb (a full accept queue); clients retransmit with
	// Linux's schedule (initial RTO 1 s, doubling: SYNs at 0, 1, 3, 7 s) and
	// give up after the fourth SYN.
	DropStart, DropLen time.Duration
	DropProb           float64

	// Planted anomalies, spread at random over [10 s, Duration-40 s).
	Refused      int           // SYNs to :8080 answered with RST+ACK
	ServerResets int           // connections the server resets right after the first request
	Slow         int           // first responses that start 5.2-15 s after their request
	SynAckRetx   int           // connections whose SYN-ACK is lost: SYN and SYN-ACK are retransmitted
	HealthEvery  time.Duration // a health check (HTTP GET, closed by the checker with RST) this often

	// The flood: FloodSYNs spoofed SYNs to Server:80 spread evenly (with
	// jitter) over [FloodStart, FloodStart+FloodLen). None is answered.
	FloodSYNs            int
	FloodStart, FloodLen time.Duration
}

// Web1G is the web server capture: about 1 GB, ten minutes.
func Web1G() Config {
	return Config{
		Name:         "web-1g.pcap",
		Seed:         0x5e5c09e,
		Duration:     600 * time.Second,
		Lead:         60 * time.Second,
		ConnRate:     38,
		Clients:      507,
		HTTPShare:    0.2,
		KeepAlive:    15 * time.Second,
		DropStart:    300 * time.Second,
		DropLen:      20 * time.Second,
		DropProb:     0.3,
		Refused:      6,
		ServerResets: 8,
		Slow:         20,
		SynAckRetx:   25,
		HealthEvery:  2 * time.Second,
	}
}

// SynFlood10M is ten million spoofed SYNs to :80 over 100 s with a few
// hundred legitimate HTTPS connections; 2% of the legitimate SYNs sent during
// the flood are lost as well.
func SynFlood10M() Config {
	return Config{
		Name:       "synflood-10m.pcap",
		Seed:       0xf100d,
		Duration:   110 * time.Second,
		Lead:       20 * time.Second,
		ConnRate:   4,
		Clients:    300,
		HTTPShare:  0,
		KeepAlive:  15 * time.Second,
		DropStart:  5 * time.Second,
		DropLen:    100 * time.Second,
		DropProb:   0.02,
		FloodSYNs:  10_000_000,
		FloodStart: 5 * time.Second,
		FloodLen:   100 * time.Second,
	}
}

// Presets are the benchmark's captures, in the order they are written.
func Presets() []Config { return []Config{Web1G(), SynFlood10M()} }

// Hash identifies the bytes a Config produces (with Version).
func (c Config) Hash() string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s %+v", Version, c)))
	return hex.EncodeToString(h[:8])
}

// Manifest is what a capture contains, by construction: the ground truth an
// analyser's report can be compared with.
type Manifest struct {
	Name    string
	Packets int64
	Bytes   int64 // file size

	Conns         int // connections with at least one packet in the capture (flood excluded)
	Partial       int // of which started before the capture
	PeakOpen      int // most connections open at once (first to last captured packet)
	SYNs          int // client SYNs (flood excluded), retransmits included
	SYNAcks       int // SYN-ACKs, retransmits included
	ResponseBytes int64

	// The drop window: SYNs to :443 sent in it, how many went unanswered,
	// connections answered only after a retransmit, connections whose
	// client gave up.
	WindowSYNs, WindowDropped   int
	WindowRetxAnswered, GaveUp  int
	Refused, ServerResets, Slow int
	SynAckRetx, SynAckRetxPkts  int
	HealthChecks                int
	FloodSYNs                   int
}

func (m Manifest) String() string {
	return fmt.Sprintf("%s: %d packets, %d bytes; %d connections (%d partial, peak %d open), %d SYNs, %d SYN-ACKs, %.1f MB of responses; "+
		"drop window: %d SYNs to :443, %d unanswered, %d connections answered after a retransmit, %d gave up; "+
		"%d refused on :8080, %d server resets after the request, %d slow first responses, %d SYN-ACK retransmits in %d connections, %d health checks; %d flood SYNs",
		m.Name, m.Packets, m.Bytes, m.Conns, m.Partial, m.PeakOpen, m.SYNs, m.SYNAcks, float64(m.ResponseBytes)/1e6,
		m.WindowSYNs, m.WindowDropped, m.WindowRetxAnswered, m.GaveUp,
		m.Refused, m.ServerResets, m.Slow, m.SynAckRetxPkts, m.SynAckRetx, m.HealthChecks, m.FloodSYNs)
}
