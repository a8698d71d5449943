package analyze

// Zeek-compatible conn_state and history, so a synscope attempt can be set
// beside a Zeek conn.log line.
//
// zeekState replays, per packet, what Zeek's TCP analyzer does with a
// connection (packet_analysis/protocol/tcp/TCPSessionAdapter.cc and
// analyzer/protocol/tcp/TCP_Endpoint.cc, TCP_Reassembler.cc): the two
// endpoint state machines, the sequence-space bookkeeping behind the history
// letters, and a small model of the reassembler that tells content gaps.
// conn_state is then derived as scripts/base/protocols/conn/main.zeek does.
//
// Roles: Zeek calls the sender of a connection's first packet the
// originator, unless its heuristics flip the roles (a history '^'). The state
// here follows Zeek's roles, which usually match the attempt's client and
// server; ZeekOrigIsServer reports when they do not, and History and
// ConnState are then written from Zeek's side, as Zeek would log them.
//
// What is not modelled, and why:
//   - checksums ('C'): the decoder does not verify them; this is Zeek run
//     with -C, as its own test suite mostly runs, because captures taken on
//     the sending host carry offloaded (invalid) checksums;
//   - payload cut by the snap length: Zeek leaves such payload out of
//     reassembly, so a peer's acknowledgment of it reads as a content gap
//     ('G'); see capturedPayload;
//   - Zeek's timers (tcp_attempt_delay, inactivity) and its choice of when a
//     SYN starts a new connection: attempts are split by the tracker;
//   - capture duplicates: the tracker drops them before this code sees them,
//     where Zeek would count a duplicated data segment as a retransmission.
//
// Everything is kept in fixed-size fields: the state lives inside every
// attempt, so update must not allocate and the struct must stay small.

// zeekEP is a TCP endpoint state as Zeek names them (TCP_ENDPOINT_*).
type zeekEP uint8

const (
	zInactive zeekEP = iota
	zSynSent
	zSynAckSent
	zPartial
	zEstablished
	zClosed
	zReset
)

const maxHist = 32

// tooLargeSeqDelta is Zeek's bound on a plausible jump in a SYN's or RST's
// sequence number (TOO_LARGE_SEQ_DELTA).
const tooLargeSeqDelta = 1 << 20

// Defaults of Zeek's script-level options that the reassembler model uses.
const (
	zeekMaxInitialWindow         = 16384            // tcp_max_initial_window
	zeekMaxAboveHoleWithoutAcks  = 16384            // tcp_max_above_hole_without_any_acks
	zeekExcessiveDataWithoutAcks = 10 * 1024 * 1024 // tcp_excessive_data_without_further_acks
)

// History kinds logged once per direction (Zeek's HIST_* masks; the
// responder's are shifted by 16 bits).
const (
	hSYN = 1 << iota
	hFIN
	hRST
	hFinRst
	hData
	hACK
	hMulti
)

// zeekEnd is one endpoint as Zeek's TCP_Endpoint sees it. Sequence numbers
// relative to start are uint32 (connections beyond 4 GB wrap; Zeek counts
// wraps, which matters only for its byte counts).
type zeekEnd struct {
	start uint32 // StartSeq: the ISN, or one before the first sequence seen
	last  uint32 // LastSeq: one past the highest sequence number sent
	ack   uint32 // AckSeq: the highest acknowledgment of this side's data
	fin   uint32 // relative sequence number just past the FIN
	// Relative sequence numbers of the last SYN, FIN and RST (hist_last_*).
	histSYN, histFIN, histRST uint32
	// Reassembly (relative): data below next was delivered or reported
	// missing; trim is the highest acknowledgment acted on; one buffered
	// extent above a hole is kept (Zeek keeps a block list; holes beyond the
	// first are merged, which can only undercount gap events).
	next, trim     uint32
	holeLo, holeHi uint32
	// Events logged in a logarithmic fashion: retransmissions, content
	// gaps, zero windows.
	rxmt, gaps, win0 uint32

	state, prev zeekEP
	flags       uint8 // endFIN, endSeen, endHole, endSkip
}

// zeekEnd flags.
const (
	endFIN  = 1 << iota // sent a FIN (FIN_cnt > 0)
	endSeen             // first_packet_seen for this endpoint
	endHole             // holeLo, holeHi hold data above a hole
	endSkip             // the reassembler gave up (skip_deliveries)
)

func (e *zeekEnd) has(f uint8) bool { return e.flags&f != 0 }

func (e *zeekEnd) set(f uint8, on bool) {
	if on {
		e.flags |= f
	} else {
		e.flags &^= f
	}
}

type zeekState struct {
	end  [2]zeekEnd // the attempt's client, then its server
	seen uint32     // history kinds logged (Zeek's hist_seen)

	started bool
	// origIsServer: Zeek's originator is the attempt's server.
	origIsServer bool
	// synAckFirst: the first packet was a SYN-ACK and Zeek kept the roles;
	// an ACK or data on the next packet flips them (zeek/zeek#2191).
	synAckFirst bool
	partial     bool // is_partial
	nhist       uint8
	hist        [maxHist]byte
}

func seqLT(a, b uint32) bool { return int32(a-b) < 0 }
func seqLE(a, b uint32) bool { return int32(a-b) <= 0 }

func (e *zeekEnd) setState(s zeekEP) {
	if s != e.state {
		e.prev, e.state = e.state, s
	}
}

// isOrig says whether endpoint i (0 client, 1 server) is Zeek's originator.
func (z *zeekState) isOrig(i int) bool { return (i == 0) != z.origIsServer }

func (z *zeekState) addRaw(c byte) {
	if int(z.nhist) < maxHist {
		z.hist[z.nhist] = c
		z.nhist++
	}
}

// add logs letter c (upper case) for endpoint i in its current role.
func (z *zeekState) add(i int, c byte) {
	if !z.isOrig(i) {
		c += 'a' - 'A'
	}
	z.addRaw(c)
}

// once logs c the first time kind is seen from endpoint i's role and reports
// whether the kind had been seen before (Zeek's CheckHistory).
func (z *zeekState) once(i int, kind uint32, c byte) bool {
	if !z.isOrig(i) {
		kind <<= 16
	}
	if z.seen&kind != 0 {
		return true
	}
	z.seen |= kind
	z.add(i, c)
	return false
}

// scaled counts an event and logs c at the 1st, 10th, 100th... occurrence.
func (z *zeekState) scaled(i int, n *uint32, c byte) {
	*n++
	for v := *n; v != 0; v /= 10 {
		if v == 1 {
			z.add(i, c)
			return
		}
		if v%10 != 0 {
			return
		}
	}
}

// flip swaps Zeek's roles mid-connection (Connection::FlipRoles): '^' is
// appended; what was logged stays as it was.
func (z *zeekState) flip() {
	z.origIsServer = !z.origIsServer
	z.partial = false
	z.addRaw('^')
}

// flipFromStart swaps the roles as if Zeek had flipped them on the first
// packet: Zeek logs "^h..." for a connection it flips on the packet after a
// SYN-ACK (one-sided-2745 in Zeek's tests).
func (z *zeekState) flipFromStart() {
	z.origIsServer = !z.origIsServer
	z.partial = false
	n := int(z.nhist)
	if n == maxHist {
		n--
	}
	copy(z.hist[1:n+1], z.hist[:n])
	z.hist[0] = '^'
	z.nhist = uint8(n + 1)
	for i := 1; i <= n; i++ {
		switch c := z.hist[i]; {
		case c >= 'a' && c <= 'z':
			z.hist[i] = c - ('a' - 'A')
		case c >= 'A' && c <= 'Z':
			z.hist[i] = c + ('a' - 'A')
		}
	}
	z.seen = z.seen>>16 | z.seen<<16
}

// begin decides Zeek's roles on a connection's first packet
// (TCPAnalyzer::WantConnection): a packet that is not a bare SYN, sent from
// a likely server port, makes its receiver the originator. Zeek's
// likely_server_ports come from the analyzers its scripts load; the
// tracker's guess (ports below 1024) stands in for them.
func (z *zeekState) begin(d *Decoded, fromClient bool) {
	syn, ack := d.Flags&FlagSYN != 0, d.Flags&FlagACK != 0
	flip := false
	if (!syn || ack) && likelyServerPort(d.SPort) {
		if likelyServerPort(d.DPort) {
			flip = !syn && d.SPort < d.DPort
		} else {
			flip = true
		}
	}
	// The originator is the sender, unless flipped.
	z.origIsServer = fromClient == flip
	for j := range z.end {
		// Zeek's reassembler numbers the first byte of data 1.
		z.end[j].next, z.end[j].trim = 1, 1
	}
	if flip {
		z.addRaw('^')
	}
	z.synAckFirst = syn && ack && !flip
}

func (z *zeekState) update(a *Attempt, d *Decoded, fromClient bool, f *flow) {
	fl := d.Flags
	syn, fin, rst, ack := fl&FlagSYN != 0, fl&FlagFIN != 0, fl&FlagRST != 0, fl&FlagACK != 0
	plen := d.PayloadLen
	if !z.started {
		z.started = true
		z.begin(d, fromClient)
	} else if z.synAckFirst {
		z.synAckFirst = false
		if !syn && !rst && (ack || plen > 0) {
			z.flipFromStart()
		}
	}

	i := 1
	if fromClient {
		i = 0
	}
	e, p := &z.end[i], &z.end[1-i]
	orig := z.isOrig(i)

	// SetPartialStatus.
	if orig {
		if !e.has(endSeen) {
			z.partial = !syn || ack
		}
	} else if !e.has(endSeen) && !z.partial {
		z.partial = !syn
	}

	segLen := plen
	if syn {
		segLen++
	}
	if fin {
		segLen++
	}
	if rst {
		segLen -= plen
	}
	past := d.Seq + segLen
	e.init(syn, d.Seq, past)
	rel := d.Seq - e.start
	underflow := int32(rel) < 0

	z.history(i, e, syn, fin, rst, ack, rel, plen)

	// A zero window is news unless it comes with or after a RST, or after
	// the peer's FIN (update_window).
	if d.Win == 0 && !rst && p.state != zClosed && e.state != zReset {
		z.scaled(i, &e.win0, 'W')
	}
	if fin {
		e.set(endFIN, true)
		e.fin = rel + segLen
	}

	var relAck uint32
	if ack {
		if p.state == zInactive {
			// init_peer: number the peer as though its SYN had been seen.
			p.start, p.ack, p.last = d.Ack-1, d.Ack-1, d.Ack-1
			relAck = 1
		} else if r := d.Ack - p.start; int32(r) >= 0 {
			relAck = r
			if !rst {
				if delta := int32(d.Ack - p.ack); delta > 0 && !(d.Ack == 0 && delta > tooLargeSeqDelta) {
					p.ack = d.Ack
				}
			}
		}
	}

	// update_last_seq: data that does not advance the sequence space is a
	// retransmission.
	switch delta := int32(past - e.last); {
	case (syn || rst) && (delta > tooLargeSeqDelta || delta < -tooLargeSeqDelta):
	case fin && e.last == e.start+1:
		e.last = past
	case e.state == zReset:
	case delta > 0:
		e.last = past
	case plen > 0:
		z.scaled(i, &e.rxmt, 'T')
	}

	z.stateMachine(e, p, orig, syn, fin, rst, ack, plen)

	if ack {
		z.ackReceived(1-i, p, relAck)
	}
	if plen > 0 && !rst && !underflow && capturedPayload(d) >= plen {
		start := rel
		if syn {
			start++
		}
		e.dataSent(start, plen)
	}
	e.set(endSeen, true)
}

// firstSYN is update for an attempt's first packet when it is the client's
// SYN without ACK, FIN, RST or payload, with a window: what every embryo a
// flood leaves unanswered starts with, done without the general path
// (TestZeekFirstSYN holds the two equal). z must be blank.
func (z *zeekState) firstSYN(seq uint32) {
	z.started = true // begin: the sender originates, nothing flipped
	c, s := &z.end[0], &z.end[1]
	c.start, c.ack, c.last = seq, seq, seq+1 // init_endpoint
	c.next, c.trim, s.next, s.trim = 1, 1, 1, 1
	c.state = zSynSent // prev stays zInactive
	c.flags = endSeen
	z.seen = hSYN
	z.hist[0], z.nhist = 'S', 1
}

// firstSYNFits reports whether firstSYN can stand for update on an
// attempt's first packet d from the client.
func firstSYNFits(d *Decoded) bool {
	return d.Flags&(FlagSYN|FlagACK|FlagFIN|FlagRST) == FlagSYN && d.PayloadLen == 0 && d.Win != 0
}

// capturedPayload is how much of the segment's payload the capture holds.
// Zeek leaves payload cut by the snap length out of reassembly (content gaps).
func capturedPayload(d *Decoded) uint32 { return d.PayloadCap }

// init is Zeek's init_endpoint: a SYN, or an endpoint's first
// packet, (re)sets its sequence space.
func (e *zeekEnd) init(syn bool, seq, past uint32) {
	reinit := false
	switch e.state {
	case zInactive:
		if syn {
			e.start, e.ack, e.last = seq, seq, past
		} else {
			e.start, e.ack, e.last = seq-1, seq-1, seq
		}
	case zSynSent, zSynAckSent:
		reinit = syn && seq != e.start
	case zEstablished, zPartial:
		reinit = syn
	case zReset:
		reinit = syn && e.prev == zInactive
	}
	if reinit {
		e.start, e.ack, e.last = seq, seq, past
	}
}

// history logs the letters for the packet's flags (update_history).
func (z *zeekState) history(i int, e *zeekEnd, syn, fin, rst, ack bool, rel, plen uint32) {
	bits := 0
	for _, b := range [3]bool{syn, fin, rst} {
		if b {
			bits++
		}
	}
	switch {
	case bits > 1:
		if fin && rst {
			z.once(i, hFinRst, 'I')
		} else {
			z.once(i, hMulti, 'Q')
		}
	case syn:
		c := byte('S')
		if ack {
			c = 'H'
		}
		if z.once(i, hSYN, c) && rel != e.histSYN {
			z.add(i, c)
		}
		e.histSYN = rel
	case fin:
		// A FIN's sequence number is taken after its data.
		if z.once(i, hFIN, 'F') && rel+plen != e.histFIN {
			z.add(i, 'F')
		}
		e.histFIN = rel + plen
	case rst:
		if z.once(i, hRST, 'R') && rel != e.histRST {
			z.add(i, 'R')
		}
		e.histRST = rel
	case plen > 0:
		z.once(i, hData, 'D')
	case ack:
		z.once(i, hACK, 'A')
	}
}

// stateMachine is Zeek's UpdateStateMachine for the sending endpoint e and
// its peer p; orig is e's role when the packet arrived.
func (z *zeekState) stateMachine(e, p *zeekEnd, orig, syn, fin, rst, ack bool, plen uint32) {
	switch e.state {
	case zInactive:
		if syn {
			switch {
			case orig && ack:
				e.setState(zSynAckSent)
			case orig:
				e.setState(zSynSent)
			default:
				if !ack && p.state == zSynAckSent {
					// The SYN-ACK was seen before its SYN: the roles were
					// wrong, flip them and establish the connection.
					z.flip()
					p.setState(zEstablished)
					e.set(endSeen, true)
				}
				if p.state == zSynSent {
					p.setState(zEstablished)
				}
				e.setState(zEstablished)
			}
		}
		if fin {
			e.setState(zClosed)
		}
		if rst {
			e.setState(zReset)
		}
		if e.state == zInactive {
			switch {
			case !orig && plen == 0 && p.state == zSynSent:
				// An ACK of the SYN ahead of the SYN-ACK: not yet a
				// partial connection.
			case ack && p.state == zEstablished:
				// The SYN was missed, the SYN-ACK and this ACK were not.
				e.setState(zEstablished)
				z.partial = false
				e.set(endSeen, true)
			default:
				e.setState(zPartial)
			}
		}
	case zSynSent, zSynAckSent:
		if fin {
			e.setState(zClosed)
		}
		if rst {
			e.setState(zReset)
		}
	case zEstablished, zPartial:
		if syn && e.state == zPartial && p.state == zInactive && !ack {
			e.setState(zSynSent)
		}
		if fin && !rst {
			e.setState(zClosed)
			if p.state == zReset && p.prev == zClosed {
				// The peer's FIN then RST was a normal close after all.
				p.setState(zClosed)
			}
		}
		if rst {
			e.setState(zReset)
		}
	case zClosed:
		if rst && p.state != zClosed {
			e.setState(zReset)
		}
	}
}

// clean is is_clean in TCP_Reassembler.cc.
func (e *zeekEnd) clean() bool {
	return e.state == zEstablished || (e.state == zClosed && e.prev == zEstablished)
}

// noDataAcked: the peer has acknowledged nothing beyond the SYN.
func (e *zeekEnd) noDataAcked() bool { return e.ack == e.start || e.ack == e.start+1 }

// dataSent hands a segment's payload, [seq, seq+n) relative, to the
// endpoint's reassembler.
func (e *zeekEnd) dataSent(seq, n uint32) {
	if e.has(endSkip) {
		return
	}
	if acked := e.ack - e.start; seqLT(seq, acked) {
		if seqLE(seq+n, acked) {
			return // delivered and acknowledged already
		}
		n -= acked - seq
		seq = acked
	}
	upper := seq + n
	if seqLE(upper, e.trim) {
		return
	}
	if seqLT(seq, e.trim) {
		seq = e.trim
	}
	switch {
	case seqLT(e.next, seq):
		// Above a hole: buffer it.
		if !e.has(endHole) {
			e.holeLo, e.holeHi = seq, upper
			e.set(endHole, true)
		} else {
			if seqLT(seq, e.holeLo) {
				e.holeLo = seq
			}
			if seqLT(e.holeHi, upper) {
				e.holeHi = upper
			}
		}
	case seqLT(e.next, upper):
		e.next = upper
		if e.has(endHole) && seqLE(e.holeLo, e.next) {
			if seqLT(e.next, e.holeHi) {
				e.next = e.holeHi
			}
			e.set(endHole, false)
		}
		if e.noDataAcked() && e.last-e.start > zeekMaxInitialWindow {
			// Much data and no acknowledgment: the peer's ACKs are not
			// being seen, so delivered data is not held for them.
			e.trim = e.next
		}
	}
	// The reassembler gives up on data it cannot deliver (Zeek weirds
	// above_hole_data_without_any_acks, excessive_data_without_further_acks).
	var buffered uint32
	if seqLT(e.trim, e.next) {
		buffered = e.next - e.trim // delivered, not yet acknowledged
	}
	if e.has(endHole) {
		buffered += e.holeHi - e.holeLo
		if e.noDataAcked() && e.holeHi-e.next > zeekMaxAboveHoleWithoutAcks {
			e.set(endSkip, true)
		}
	}
	if buffered > zeekExcessiveDataWithoutAcks {
		e.set(endSkip, true)
	}
	if e.has(endSkip) {
		e.set(endHole, false)
	}
}

// ackReceived is the peer acknowledging endpoint i's data up to seq
// (relative): what it acknowledges but was never seen is a content gap.
func (z *zeekState) ackReceived(i int, e *zeekEnd, seq uint32) {
	if e.has(endFIN) && seqLE(e.fin, seq) {
		seq = e.fin - 1
	}
	if seqLE(seq, e.trim) {
		return
	}
	if seqLT(e.next, seq) {
		z.undelivered(i, e, seq)
	}
	if e.has(endHole) && seqLE(e.holeHi, seq) {
		e.set(endHole, false)
	}
	e.trim = seq
}

// undelivered reports the data below upTo that never arrived
// (TCP_Reassembler::Undelivered).
func (z *zeekState) undelivered(i int, e *zeekEnd, upTo uint32) {
	if seqLE(upTo, 2) && z.partial {
		// The faked ISN of a partial connection, or a keep-alive.
		return
	}
	if !e.has(endSkip) {
		if e.has(endHole) && seqLT(e.holeLo, upTo) {
			if seqLT(e.next, e.holeLo) {
				z.gap(i, e)
			}
			if seqLT(e.next, e.holeHi) {
				e.next = e.holeHi
			}
			e.set(endHole, false)
		}
		if seqLT(e.next, upTo) {
			z.gap(i, e)
		}
	}
	if seqLT(e.next, upTo) {
		e.next = upTo
	}
}

// gap logs a content gap, if both ends are established or closing cleanly
// (gaps elsewhere come from RSTs and unseen starts).
func (z *zeekState) gap(i int, e *zeekEnd) {
	if e.clean() && z.end[1-i].clean() {
		z.scaled(i, &e.gaps, 'G')
	}
}

// size is the endpoint's byte count as Zeek derives it from sequence
// numbers (TCP_Endpoint::Size); conn_state only asks whether it is zero.
func (e *zeekEnd) size(p *zeekEnd) uint32 {
	if e.prev == zSynSent && e.state == zReset && p.state == zInactive && !e.noDataAcked() {
		return 0 // a half-open connection discovered and aborted
	}
	n := e.last - e.start
	if a := e.ack - e.start; a > n {
		n = a
	}
	if n != 0 {
		n-- // the SYN
	}
	if e.has(endFIN) && n != 0 {
		n-- // the FIN
	}
	return n
}

// origResp returns Zeek's originator and responder.
func (z *zeekState) origResp() (o, r *zeekEnd) {
	if z.origIsServer {
		return &z.end[1], &z.end[0]
	}
	return &z.end[0], &z.end[1]
}

// connState is conn_state() of base/protocols/conn/main.zeek.
func (z *zeekState) connState(a *Attempt) string {
	o, r := z.origResp()
	os, rs := o.state, r.state
	oInactive := os == zInactive || os == zPartial
	rInactive := rs == zInactive || rs == zPartial
	switch {
	case rs == zReset:
		if os == zSynSent || os == zSynAckSent || (os == zReset && o.size(r) == 0 && r.size(o) == 0) {
			return "REJ"
		}
		if oInactive {
			return "RSTRH"
		}
		return "RSTR"
	case os == zReset:
		if rInactive {
			if rstos0(z.hist[:z.nhist]) {
				return "RSTOS0"
			}
			return "OTH"
		}
		return "RSTO"
	case rs == zClosed && os == zClosed:
		return "SF"
	case os == zClosed:
		if rInactive {
			return "SH"
		}
		return "S2"
	case rs == zClosed:
		if oInactive {
			return "SHR"
		}
		return "S3"
	case os == zSynSent && rs == zInactive:
		return "S0"
	case os == zEstablished && rs == zEstablished:
		return "S1"
	}
	return "OTH"
}

// rstos0 matches Zeek's /\^?S[^HAFGIQ]*R.*/ against the whole history.
func rstos0(h []byte) bool {
	i := 0
	if i < len(h) && h[i] == '^' {
		i++
	}
	if i >= len(h) || h[i] != 'S' {
		return false
	}
	for i++; i < len(h); i++ {
		switch h[i] {
		case 'R':
			return true
		case 'H', 'A', 'F', 'G', 'I', 'Q':
			return false
		}
	}
	return false
}

// ZeekOrigIsServer reports whether Zeek would take the attempt's server for
// the connection's originator (its heuristics guessed the roles the other
// way round). History and ConnState are then written from that side, as in
// Zeek's conn.log, where the server is id.orig_h.
func (a *Attempt) ZeekOrigIsServer() bool { return a.zeek.origIsServer }
