package analyze

import (
	"net/netip"
	"time"
)

// Outcome is the verdict on one connection attempt. The outcomes are
// exclusive: every attempt has exactly one, and they sum to the attempts.
type Outcome uint8

const (
	OutcomeEstablished             Outcome = iota // handshake completed on the first SYN
	OutcomeAnsweredAfterRetransmit                // completed, but only after SYN retransmits
	OutcomeUnanswered                             // no SYN-ACK, RST or ICMP error, and the client gave up
	OutcomeRefused                                // RST or ICMP unreachable in answer to the SYN
	OutcomeAbandoned                              // SYN-ACK seen, handshake never completed
	OutcomeUndetermined                           // the capture ended too soon after the last SYN to say
	OutcomePartial                                // the capture started mid-connection
	NumOutcomes
)

var outcomeNames = [NumOutcomes]string{
	"established", "answered_after_retransmit", "unanswered", "refused", "abandoned", "undetermined", "partial",
}

func (o Outcome) String() string {
	if o < NumOutcomes {
		return outcomeNames[o]
	}
	return "outcome(" + itoa(int(o)) + ")"
}

// ParseOutcome is the inverse of String.
func ParseOutcome(s string) (Outcome, bool) {
	for i, n := range outcomeNames {
		if n == s {
			return Outcome(i), true
		}
	}
	return 0, false
}

// Anomalous reports whether an outcome is a failure worth listing. Partial
// attempts (the capture began mid-connection) are never anomalies.
func (o Outcome) Anomalous() bool {
	switch o {
	case OutcomeAnsweredAfterRetransmit, OutcomeUnanswered, OutcomeRefused, OutcomeAbandoned:
		return true
	}
	return false
}

// Side names an end of a connection.
type Side uint8

const (
	SideNone Side = iota
	SideClient
	SideServer
)

func (s Side) String() string {
	switch s {
	case SideClient:
		return "client"
	case SideServer:
		return "server"
	}
	return "none"
}

// CloseKind is how a connection ended.
type CloseKind uint8

const (
	CloseNone CloseKind = iota
	CloseFIN
	CloseRST
)

func (c CloseKind) String() string {
	switch c {
	case CloseFIN:
		return "fin"
	case CloseRST:
		return "rst"
	}
	return "none"
}

// Phase is where in a connection's life its first FIN or RST came.
type Phase uint8

const (
	PhaseNone          Phase = iota
	PhaseHandshake           // before the handshake completed
	PhaseBeforeData          // handshake done, no payload either way
	PhaseAfterRequest        // the client sent data, the server none yet
	PhaseAfterResponse       // the server sent data
)

func (p Phase) String() string {
	switch p {
	case PhaseHandshake:
		return "in_handshake"
	case PhaseBeforeData:
		return "before_data"
	case PhaseAfterRequest:
		return "after_request"
	case PhaseAfterResponse:
		return "after_response"
	}
	return "none"
}

// Tri is a yes/no/unknown answer: an option cut off by the snap length is
// unknown, never absent.
type Tri int8

const (
	TriNone Tri = iota // no such packet
	TriNo
	TriYes
	TriUnknown
)

// RefusedBy says what refused an attempt.
type RefusedBy uint8

const (
	RefusedNone RefusedBy = iota
	RefusedRST
	RefusedICMP
)

func (r RefusedBy) String() string {
	switch r {
	case RefusedRST:
		return "rst"
	case RefusedICMP:
		return "icmp"
	}
	return "none"
}

// PacketRef names a packet in the input: which source, which record.
type PacketRef struct {
	Source int32
	Num    uint64
}

// Event is one packet in an attempt's timeline.
type Event struct {
	Time  int64 // ns
	Ref   PacketRef
	Dir   Side // sender
	Flags uint8
	Seq   uint32
	Ack   uint32
	Len   uint32 // payload length
	Win   uint16
	Opts  Options
	Note  EventNote
	ICMP  [2]uint8 // type, code for ICMP errors
}

// EventNote says why a packet is in a timeline.
type EventNote uint8

const (
	NoteNone EventNote = iota
	NoteSYN
	NoteSYNRetransmit
	NoteSYNACK
	NoteSYNACKRetransmit
	NoteHandshakeACK
	NoteFirstData
	NoteFIN
	NoteRST
	NoteICMP
	NoteSimOpenSYN
	NoteStaleACK
	NoteStaleRST
)

var noteNames = [...]string{"", "SYN", "SYN retransmission", "SYN-ACK", "SYN-ACK retransmission",
	"handshake ACK", "first data", "FIN", "RST", "ICMP unreachable", "simultaneous-open SYN",
	"stale ACK or SYN-ACK from the server (old connection state)", "client RST clearing the stale state"}

func (n EventNote) String() string {
	if int(n) < len(noteNames) {
		return noteNames[n]
	}
	return ""
}

// Limits on what one attempt keeps, so a pathological flow cannot grow it.
const (
	MaxSynTimes  = 16
	MaxTimeline  = 16
	noAnswerIdx  = -1
	nsPerMilli   = int64(time.Millisecond)
	maxSeqWindow = 1 << 24 // how far past the expected number an acknowledgment may plausibly run
)

// Attempt is one connection attempt: the client's 4-tuple plus its ISN.
type Attempt struct {
	ID     uint64
	Client netip.AddrPort
	Server netip.AddrPort
	NVLAN  uint8
	VLAN   [2]uint16

	HasISN       bool
	ISN          uint32
	HasServerISN bool
	ServerISN    uint32

	Start int64 // first SYN, or first packet for partial attempts (ns)
	End   int64 // last packet
	First PacketRef

	Syns     int // SYN packets from the client (retransmits included, duplicates not)
	SynTimes [MaxSynTimes]int64
	synTSval [MaxSynTimes]uint32
	SynOpts  Options // of the first SYN
	SynData  uint32  // payload carried by the first SYN (TCP Fast Open)
	SynTS    Tri

	SynAcks     int
	FirstSynAck int64
	SynAckOpts  Options
	SynAckTS    Tri
	// AnsweredSyn is the index (in SynTimes) of the SYN the first SYN-ACK
	// answered, identified by its TSecr; -1 when that cannot be told.
	AnsweredSyn int8

	HandshakeDone bool
	AckTime       int64 // the client's ACK completing the handshake
	// AckCarried: the segment completing the handshake carried data or a
	// FIN; the handshake may have ended earlier with a pure ACK the capture
	// does not have, so no round-trip time is taken from it.
	AckCarried bool
	OneSided   bool // completed as far as one direction shows (the other was not captured)
	SimOpen    bool // both ends sent a SYN
	Reordered  bool // the SYN-ACK was captured before its SYN
	// StaleACKs counts ACKs (or SYN-ACKs) the server sent in answer to the
	// SYN that acknowledge another sequence space: it still held an old
	// connection on this 4-tuple (the client then resets it and retransmits
	// the SYN). They do not answer the attempt.
	StaleACKs int

	Refused    RefusedBy
	RefuseTime int64
	ICMPType   uint8
	ICMPCode   uint8
	ICMPFrom   netip.Addr

	FirstDataClient int64 // 0 when none
	FirstDataServer int64
	BytesClient     uint64
	BytesServer     uint64
	PktsClient      uint64
	PktsServer      uint64

	Close      CloseKind
	ClosedBy   Side
	ClosePhase Phase
	CloseTime  int64
	finBy      [3]bool // indexed by Side
	rstBy      [3]uint32
	firstRST   Side
	firstFIN   Side
	rstAfterHS Side // first RST after the handshake completed

	Outcome Outcome
	Evicted bool // finished early because the table was full

	// Kernel is what the watched host's kernel said about the attempt
	// (drops, SYN-ACK retransmits, resets); zero without kernel evidence.
	Kernel AttemptKernel

	Timeline  []Event
	Truncated int // timeline events not kept

	zeek zeekState
}

// SynGaps returns the times of the SYNs relative to the first one.
func (a *Attempt) SynOffsets() []time.Duration {
	n := a.Syns
	if n > MaxSynTimes {
		n = MaxSynTimes
	}
	out := make([]time.Duration, n)
	for i := 0; i < n; i++ {
		out[i] = time.Duration(a.SynTimes[i] - a.SynTimes[0])
	}
	return out
}

// HandshakeRTT is the time from the answered SYN to the client's completing
// ACK, as seen at the capture point. ok is false when it cannot be measured
// without ambiguity (Karn: a retransmitted SYN without timestamps).
func (a *Attempt) HandshakeRTT() (server, client time.Duration, ok bool) {
	if !a.HandshakeDone || a.OneSided || a.AckCarried || a.SynAcks == 0 || a.Syns == 0 {
		return 0, 0, false
	}
	idx := int(a.AnsweredSyn)
	if idx < 0 {
		if a.Syns != 1 {
			return 0, 0, false
		}
		idx = 0
	}
	if idx >= MaxSynTimes {
		return 0, 0, false
	}
	s := a.FirstSynAck - a.SynTimes[idx]
	c := a.AckTime - a.FirstSynAck
	if s < 0 || c < 0 {
		return 0, 0, false
	}
	return time.Duration(s), time.Duration(c), true
}

// RetransmitDelay is the connect delay SYN retransmits added: from the first
// SYN to the SYN that was answered (or the last one before the SYN-ACK).
func (a *Attempt) RetransmitDelay() time.Duration {
	if a.Syns < 2 || a.SynAcks == 0 {
		return 0
	}
	idx := int(a.AnsweredSyn)
	if idx < 0 {
		n := a.Syns
		if n > MaxSynTimes {
			n = MaxSynTimes
		}
		idx = 0
		for i := 0; i < n; i++ {
			if a.SynTimes[i] <= a.FirstSynAck {
				idx = i
			}
		}
	}
	if idx >= MaxSynTimes {
		idx = MaxSynTimes - 1
	}
	d := a.SynTimes[idx] - a.SynTimes[0]
	if d < 0 {
		d = 0
	}
	return time.Duration(d)
}

// TTFB is the time from the client's first data to the server's first data.
func (a *Attempt) TTFB() (time.Duration, bool) {
	if a.FirstDataClient == 0 || a.FirstDataServer == 0 || a.FirstDataServer < a.FirstDataClient {
		return 0, false
	}
	return time.Duration(a.FirstDataServer - a.FirstDataClient), true
}

// VLANs returns the VLAN ids of the attempt's key.
func (a *Attempt) VLANs() []uint16 {
	n := int(a.NVLAN)
	if n > 2 {
		n = 2
	}
	return append([]uint16(nil), a.VLAN[:n]...)
}

// ResetAfterHandshake says which side sent the first RST after the handshake
// completed (SideNone when there was none).
func (a *Attempt) ResetAfterHandshake() Side { return a.rstAfterHS }

// ConnState and History are Zeek's conn_state and history for the attempt.
func (a *Attempt) ConnState() string { return a.zeek.connState(a) }
func (a *Attempt) History() string   { return string(a.zeek.hist[:a.zeek.nhist]) }
