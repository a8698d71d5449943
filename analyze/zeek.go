package analyze

// Zeek-compatible conn_state and history, so a synscope attempt can be set
// beside a Zeek conn.log line. The endpoint states and the history letters
// follow Zeek's TCP analyzer (TCPSessionAdapter.cc) and conn_state() in
// base/protocols/conn/main.zeek.

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

type zeekState struct {
	orig, resp zeekEP
	flipped    bool // the first packet came from the responder
	seen       bool
	origSize   uint64
	respSize   uint64
	once       [2]uint16 // history letters already logged, per direction
	lastSYN    [2]uint32
	lastFIN    [2]uint32
	lastRST    [2]uint32
	hasSYN     [2]bool
	hasFIN     [2]bool
	hasRST     [2]bool
	nhist      uint8
	hist       [maxHist]byte
}

const (
	hSYN = 1 << iota
	hSYNACK
	hACK
	hData
	hFIN
	hRST
	hMulti
	hFinRst
)

func (z *zeekState) add(c byte, orig bool) {
	if !orig {
		c += 'a' - 'A'
	}
	if int(z.nhist) < maxHist {
		z.hist[z.nhist] = c
		z.nhist++
	}
}

// once logs letter c the first time its kind is seen in a direction.
func (z *zeekState) addOnce(mask uint16, c byte, orig bool) bool {
	i := 0
	if !orig {
		i = 1
	}
	if z.once[i]&mask != 0 {
		return false
	}
	z.once[i] |= mask
	z.add(c, orig)
	return true
}

func (z *zeekState) update(a *Attempt, d *Decoded, orig bool, f *flow) {
	if !z.seen {
		z.seen = true
		if !orig {
			z.flipped = true
			if int(z.nhist) < maxHist {
				z.hist[z.nhist] = '^'
				z.nhist++
			}
		}
	}
	i := 0
	if !orig {
		i = 1
	}
	fl := d.Flags
	syn, fin, rst, ack := fl&FlagSYN != 0, fl&FlagFIN != 0, fl&FlagRST != 0, fl&FlagACK != 0
	plen := d.PayloadLen
	bits := 0
	if syn {
		bits++
	}
	if fin {
		bits++
	}
	if rst {
		bits++
	}
	switch {
	case bits > 1:
		if fin && rst {
			z.addOnce(hFinRst, 'I', orig)
		} else {
			z.addOnce(hMulti, 'Q', orig)
		}
	case bits == 1:
		switch {
		case syn:
			c := byte('S')
			if ack {
				c = 'H'
			}
			if z.once[i]&hSYN == 0 || (z.hasSYN[i] && d.Seq != z.lastSYN[i]) {
				z.once[i] |= hSYN
				z.add(c, orig)
			}
			z.lastSYN[i], z.hasSYN[i] = d.Seq, true
		case fin:
			s := d.Seq + plen
			if z.once[i]&hFIN == 0 || (z.hasFIN[i] && s != z.lastFIN[i]) {
				z.once[i] |= hFIN
				z.add('F', orig)
			}
			z.lastFIN[i], z.hasFIN[i] = s, true
		case rst:
			if z.once[i]&hRST == 0 || (z.hasRST[i] && d.Seq != z.lastRST[i]) {
				z.once[i] |= hRST
				z.add('R', orig)
			}
			z.lastRST[i], z.hasRST[i] = d.Seq, true
		}
	default:
		if plen > 0 {
			z.addOnce(hData, 'D', orig)
		} else if ack {
			z.addOnce(hACK, 'A', orig)
		}
	}
	if orig {
		z.origSize += uint64(plen)
	} else {
		z.respSize += uint64(plen)
	}

	// Endpoint state machine.
	ep, peer := &z.orig, &z.resp
	if !orig {
		ep, peer = &z.resp, &z.orig
	}
	switch *ep {
	case zInactive:
		switch {
		case syn && ack:
			*ep = zSynAckSent
		case syn:
			*ep = zSynSent
		}
		if fin {
			*ep = zClosed
		}
		if rst {
			*ep = zReset
		}
		if *ep == zInactive && !syn {
			*ep = zPartial
		}
	case zSynSent, zSynAckSent:
		if fin {
			*ep = zClosed
		}
		if rst {
			*ep = zReset
		}
	case zPartial, zEstablished:
		if fin && !rst {
			*ep = zClosed
		}
		if rst {
			*ep = zReset
		}
	case zClosed:
		if rst {
			*ep = zReset
		}
	}
	// An ACK from an endpoint whose SYN was answered establishes both ends.
	if ack && !syn && !rst {
		if (*ep == zSynSent || *ep == zSynAckSent) && (*peer == zSynAckSent || *peer == zSynSent) {
			*ep, *peer = zEstablished, zEstablished
		}
	}
}

func (z *zeekState) connState(a *Attempt) string {
	os, rs := z.orig, z.resp
	oInactive := os == zInactive || os == zPartial
	rInactive := rs == zInactive || rs == zPartial
	hist := string(z.hist[:z.nhist])
	switch {
	case rs == zReset:
		if os == zSynSent || os == zSynAckSent || (os == zReset && z.origSize == 0 && z.respSize == 0) {
			return "REJ"
		}
		if oInactive {
			return "RSTRH"
		}
		return "RSTR"
	case os == zReset:
		if rInactive {
			if rstos0(hist) {
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

// rstos0 matches Zeek's /\^?S[^HAFGIQ]*R.*/ on the history.
func rstos0(h string) bool {
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
