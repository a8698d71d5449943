package benchgen

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// TCP flag bits.
const (
	fFIN = 1 << iota
	fSYN
	fRST
	fPSH
	fACK
)

// TCP option layouts.
const (
	optNone = iota
	optSYN  // MSS 1460, SACK permitted, timestamps, NOP, window scale 7 (Linux's order): 20 bytes
	optTS   // NOP, NOP, timestamps: 12 bytes
	optMSS  // MSS 1460 only: 4 bytes
)

const (
	mss    = 1448        // payload of a full segment with timestamps
	ms     = int64(1000) // times are in µs
	second = 1000 * ms
)

// pkt is one planned packet of a connection; the frame is built from it when
// the file is written.
type pkt struct {
	t            int64  // µs since the capture started
	conn         uint32 // index into generator.conns
	msg          uint32 // index into generator.msgs (0: no payload)
	off          uint32 // offset of the payload in its message
	seq, ack     uint32
	tsval, tsecr uint32
	plen         uint16
	win          uint16
	ipid         uint16
	flags        uint8
	dir          uint8 // 0 client to server, 1 server to client; optX << 1
}

func (p *pkt) fromServer() bool { return p.dir&1 == 1 }
func (p *pkt) opt() uint8       { return p.dir >> 1 }

// Message kinds: how a message's bytes are made.
const (
	mNone        = iota
	mHTTPReq     // a GET request padded with a cookie to its length
	mHTTPResp    // headers, then filler
	mHealthReq   // the health checker's GET
	mHealthResp  // its answer
	mTLSHello    // a TLS 1.3 ClientHello padded to its length
	mTLSServer   // ServerHello, ChangeCipherSpec, then application data records
	mTLSClientFR // ChangeCipherSpec, then application data records (Finished and the first request)
	mTLSData     // application data records
)

// msg is one request or response: the payload of one or more segments.
type msg struct {
	kind   uint8
	prefix uint16 // bytes before the filler or the first TLS record
	len    uint32
	seed   uint32 // where the filler starts; also makes the random fields
}

// client is one client address with its path properties.
type client struct {
	ip       [4]byte
	rtt, gap int64 // round-trip time, µs per full-size segment at its bottleneck
	ttl      uint8
	port     uint16 // next ephemeral port
}

// conn is one connection's addressing.
type conn struct {
	cli   uint16 // index into generator.clients
	cport uint16
	sport uint16
	// first and last captured packet, for the concurrency count
	first, last int64
}

const (
	kNormal = iota
	kRefused
	kHealth
	kServerReset
	kSlow
	kSynAckRetx
)

type arrival struct {
	t    int64
	kind uint8
}

type generator struct {
	cfg     Config
	dur     int64
	clients []client
	weights []float64 // cumulative client popularity
	conns   []conn
	msgs    []msg
	pkts    []pkt
	order   []int32 // pkts in time order
	man     Manifest

	r     *rand.Rand // this connection's PRNG
	pcg   *rand.PCG
	local []pkt
}

// plan makes every connection's packets.
func plan(cfg Config) *generator {
	g := &generator{cfg: cfg, dur: int64(cfg.Duration / time.Microsecond)}
	g.man.Name = cfg.Name
	g.msgs = append(g.msgs, msg{}) // index 0: no payload
	g.pcg = rand.NewPCG(0, 0)
	g.r = rand.New(g.pcg)
	pr := rand.New(rand.NewPCG(cfg.Seed, 0x706c616e)) // the plan's PRNG

	// Clients: the two client /24s, shuffled, minus the health checker.
	var pool [][4]byte
	for _, net := range [][3]byte{{198, 51, 100}, {203, 0, 113}} {
		for h := 1; h <= 254; h++ {
			ip := [4]byte{net[0], net[1], net[2], byte(h)}
			if ip != HealthChecker {
				pool = append(pool, ip)
			}
		}
	}
	pr.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	n := min(max(cfg.Clients, 1), len(pool))
	sum := 0.0
	for i := range n {
		c := client{ip: pool[i]}
		c.rtt = int64(clampf(30*math.Exp(0.7*pr.NormFloat64()), 2, 400) * float64(ms))
		mbps := clampf(50*math.Exp(1.0*pr.NormFloat64()), 5, 1000)
		c.gap = max(int64(1514*8/mbps), 12)
		if pr.Float64() < 0.6 {
			c.ttl = uint8(64 - 5 - pr.IntN(15))
		} else {
			c.ttl = uint8(128 - 5 - pr.IntN(15))
		}
		c.port = uint16(32768 + pr.IntN(8000))
		g.clients = append(g.clients, c)
		sum += 1 / float64(i+10) // a few addresses (NAT gateways) are busy, most are not
		g.weights = append(g.weights, sum)
	}
	for i := range g.weights {
		g.weights[i] /= sum
	}
	hc := len(g.clients)
	g.clients = append(g.clients, client{ip: HealthChecker, rtt: 300, gap: 12, ttl: 63, port: 40000})

	// Arrivals.
	var arr []arrival
	if cfg.ConnRate > 0 {
		for t := -float64(cfg.Lead / time.Microsecond); ; {
			t += pr.ExpFloat64() / cfg.ConnRate * float64(second)
			if t >= float64(g.dur) {
				break
			}
			arr = append(arr, arrival{int64(t), kNormal})
		}
	}
	plant := func(k uint8, n int) {
		lo, hi := 10*second, g.dur-40*second
		for range n {
			arr = append(arr, arrival{lo + pr.Int64N(max(hi-lo, 1)), k})
		}
	}
	plant(kRefused, cfg.Refused)
	plant(kServerReset, cfg.ServerResets)
	plant(kSlow, cfg.Slow)
	plant(kSynAckRetx, cfg.SynAckRetx)
	if e := int64(cfg.HealthEvery / time.Microsecond); e > 0 {
		for t := second; t < g.dur-2*second; t += e {
			arr = append(arr, arrival{t + pr.Int64N(3*ms), kHealth})
		}
	}
	slices.SortStableFunc(arr, func(a, b arrival) int { return cmp.Compare(a.t, b.t) })

	slow := 0
	for i, a := range arr {
		ci := hc
		if a.kind != kHealth {
			x := pr.Float64()
			ci = min(sortSearch(g.weights, x), hc-1)
		}
		c := &g.clients[ci]
		c.port += uint16(1 + pr.IntN(4))
		if c.port < 32768 || c.port > 60999 {
			c.port = 32768 + uint16(pr.IntN(1000))
		}
		sport := uint16(443)
		switch a.kind {
		case kRefused:
			sport = 8080
		case kHealth:
			sport = 80
		case kSlow:
			if slow%2 == 0 {
				sport = 80
			}
			slow++
		default:
			if pr.Float64() < cfg.HTTPShare {
				sport = 80
			}
		}
		g.conns = append(g.conns, conn{cli: uint16(ci), cport: c.port, sport: sport})
		g.pcg.Seed(cfg.Seed, uint64(i)+1)
		g.connection(uint32(i), a)
	}
	g.sortPackets()
	g.peakOpen()
	return g
}

func sortSearch(cum []float64, x float64) int {
	i, _ := slices.BinarySearch(cum, x)
	return i
}

func clampf(x, lo, hi float64) float64 { return max(lo, min(hi, x)) }

// Linux's SYN retransmit schedule: initial RTO 1 s, doubling; the client gives
// up after the fourth SYN (a connect timeout of about 10 s).
var synSchedule = [...]int64{0, 1 * second, 3 * second, 7 * second}

// cg is the state of the connection being generated.
type cg struct {
	g          *generator
	r          *rand.Rand
	id         uint32
	cl         *client
	rtt, gap   int64
	cseq, sseq uint32
	pendingAck int64 // the client's delayed ACK for an odd last segment (0: none)
	tls        bool
}

func (c *cg) add(t int64, server bool, flags, opt uint8, seq uint32, plen int, m uint32, off uint32) {
	d := opt << 1
	if server {
		d |= 1
	}
	c.g.local = append(c.g.local, pkt{t: t, conn: c.id, msg: m, off: off, seq: seq, plen: uint16(plen), flags: flags, dir: d})
}

func (c *cg) newMsg(kind uint8, n int) (uint32, int) {
	m := msg{kind: kind, len: uint32(n), seed: c.r.Uint32() & fillMask}
	switch kind {
	case mTLSServer:
		m.prefix = serverHelloLen
	case mTLSClientFR:
		m.prefix = 6
	case mHTTPReq, mHealthReq, mHealthResp, mTLSHello:
		m.prefix = uint16(n)
	case mHTTPResp:
		m.prefix = uint16(httpRespHeaderLen(n))
	}
	if kind == mTLSServer || kind == mTLSClientFR || kind == mTLSData {
		// No runt record at the end: every record carries at least 17 bytes.
		body := max(int(m.len)-int(m.prefix), 22)
		if rem := body % tlsRecord; rem != 0 && rem < 22 {
			body += 22 - rem
		}
		m.len = uint32(int(m.prefix) + body)
	}
	c.g.msgs = append(c.g.msgs, m)
	return uint32(len(c.g.msgs) - 1), int(m.len)
}

// clientData sends a request (one or more segments) at t; it returns the time
// of its last segment.
func (c *cg) clientData(t int64, kind uint8, n int) int64 {
	if c.pendingAck != 0 && c.pendingAck < t {
		c.add(c.pendingAck, false, fACK, optTS, c.cseq, 0, 0, 0)
	}
	c.pendingAck = 0
	m, n := c.newMsg(kind, n)
	for off := 0; off < n; off += mss {
		l := min(mss, n-off)
		fl := uint8(fACK)
		if off+l == n {
			fl |= fPSH
		}
		c.add(t, false, fl, optTS, c.cseq, l, m, uint32(off))
		c.cseq += uint32(l)
		if off+l < n {
			t += c.gap
		}
	}
	return t
}

// response sends n bytes from t0 with slow start from an initial window of
// ten segments (restarted after idle, as Linux does), the client ACKing every
// second segment; it returns the time of the last segment.
func (c *cg) response(t0 int64, kind uint8, n int) int64 {
	m, n := c.newMsg(kind, n)
	c.g.man.ResponseBytes += int64(n)
	nseg := (n + mss - 1) / mss
	cwnd, i, t, last := 10, 0, t0, t0
	for i < nseg {
		k := min(cwnd, nseg-i)
		for j := range k {
			off := (i + j) * mss
			l := min(mss, n-off)
			fl := uint8(fACK)
			if i+j == nseg-1 {
				fl |= fPSH
			}
			last = t + int64(j)*c.gap
			c.add(last, true, fl, optTS, c.sseq, l, m, uint32(off))
			c.sseq += uint32(l)
			if (i+j)%2 == 1 {
				c.add(last+c.rtt, false, fACK, optTS, c.cseq, 0, 0, 0)
			}
		}
		i += k
		t = max(t+c.rtt+2*c.gap, last+c.gap)
		cwnd *= 2
	}
	if nseg%2 == 1 {
		c.pendingAck = last + c.rtt + 40*ms
	} else {
		c.pendingAck = 0
	}
	return last
}

// exchange is one request and its response; it returns the time of the
// response's last segment.
func (c *cg) exchange(t int64, reqKind uint8, reqLen int, respKind uint8, respLen int, delay int64) int64 {
	t = c.clientData(t, reqKind, reqLen)
	if delay > 40*ms { // the server's delayed ACK fires first
		c.add(t+40*ms, true, fACK, optTS, c.sseq, 0, 0, 0)
	}
	return c.response(t+delay, respKind, respLen)
}

func (c *cg) lognorm(median, sigma, lo, hi float64) float64 {
	return clampf(median*math.Exp(sigma*c.r.NormFloat64()), lo, hi)
}

// respSize: most responses 2-50 KB, some small, a heavy (Pareto) tail to 8 MB.
func (c *cg) respSize() int {
	x := c.r.Float64()
	switch {
	case x < 0.80:
		return int(c.lognorm(9000, 0.9, 2000, 50000))
	case x < 0.975:
		return 300 + c.r.IntN(1700)
	default:
		p := 50000 / math.Pow(1-c.r.Float64(), 1/1.1)
		return int(min(p, 8e6))
	}
}

func (c *cg) serverDelay() int64 { return int64(c.lognorm(3000, 1.0, 100, 800_000)) }

// think is the time from a response to the next request on the connection.
func (c *cg) think() int64 {
	if c.r.Float64() < 0.7 {
		return int64(1*ms) + c.r.Int64N(80*ms) // the page's next resource
	}
	return int64(c.lognorm(3e6, 1.0, 200e3, 40e6)) // the user
}

// connection plans connection id.
func (g *generator) connection(id uint32, a arrival) {
	g.local = g.local[:0]
	k := &g.conns[id]
	c := &cg{g: g, r: g.r, id: id, cl: &g.clients[k.cli]}
	c.rtt, c.gap = c.cl.rtt, c.cl.gap
	r := c.r
	isn, sisn := r.Uint32(), r.Uint32()
	srv := func() int64 { return 15 + r.Int64N(60) } // the server's turnaround for kernel replies
	t := a.t
	cfg := &g.cfg

	// The handshake.
	if a.kind == kRefused {
		c.add(t, false, fSYN, optSYN, isn, 0, 0, 0)
		c.add(t+srv(), true, fRST|fACK, optNone, 0, 0, 0, 0)
		g.man.Refused++
		g.finish(c, isn, sisn)
		return
	}
	answered := -1
	dropWin := k.sport == 443 && a.kind == kNormal
	ds, de := int64(cfg.DropStart/time.Microsecond), int64((cfg.DropStart+cfg.DropLen)/time.Microsecond)
	inWindow := false
	for i, dt := range synSchedule {
		ts := t + dt
		c.add(ts, false, fSYN, optSYN, isn, 0, 0, 0)
		if dropWin && ts >= ds && ts < de && cfg.DropProb > 0 {
			inWindow = true
			g.man.WindowSYNs++
			if r.Float64() < cfg.DropProb {
				g.man.WindowDropped++
				continue
			}
		}
		answered = i
		break
	}
	if answered < 0 {
		g.man.GaveUp++
		g.finish(c, isn, sisn)
		return
	}
	if inWindow && answered > 0 {
		g.man.WindowRetxAnswered++
	}
	t += synSchedule[answered]
	tsa := t + srv()
	c.add(tsa, true, fSYN|fACK, optSYN, sisn, 0, 0, 0)
	if a.kind == kSynAckRetx {
		// The SYN-ACK is lost on the way to the client (twice in one
		// connection of five): the client retransmits its SYN after 1 s and
		// the server answers it with a retransmitted SYN-ACK.
		losses := 1
		if r.IntN(5) == 0 {
			losses = 2
		}
		for i := 1; i <= losses; i++ {
			ts := t + synSchedule[i]
			c.add(ts, false, fSYN, optSYN, isn, 0, 0, 0)
			tsa = ts + srv()
			c.add(tsa, true, fSYN|fACK, optSYN, sisn, 0, 0, 0)
			g.man.SynAckRetxPkts++
		}
		g.man.SynAckRetx++
	}
	t = tsa + c.rtt
	c.add(t, false, fACK, optTS, isn+1, 0, 0, 0)
	c.cseq, c.sseq = isn+1, sisn+1
	t += 20 + r.Int64N(200) // the application writes right after connect() returns

	if a.kind == kHealth {
		t = c.exchange(t, mHealthReq, len(healthReq), mHealthResp, len(healthResp), 300+r.Int64N(500))
		t += c.rtt + 50 + r.Int64N(100)
		c.add(t, false, fRST|fACK, optTS, c.cseq, 0, 0, 0) // SO_LINGER 0: closed with RST
		g.man.HealthChecks++
		g.finish(c, isn, sisn)
		return
	}
	c.tls = k.sport == 443
	if c.tls {
		t = c.exchange(t, mTLSHello, 517, mTLSServer, 2600+r.IntN(2800), 500+r.Int64N(2500))
		t += c.rtt + 200 + r.Int64N(1500)
	}
	nex := 1
	for nex < 40 && r.Float64() < 0.55 {
		nex++
	}
	for e := range nex {
		reqKind, reqLen, respKind := uint8(mHTTPReq), 250+r.IntN(650), uint8(mHTTPResp)
		if c.tls {
			reqKind, respKind = mTLSData, mTLSData
			reqLen += 22
			if e == 0 {
				reqKind = mTLSClientFR
				reqLen += 6 + 58
			}
		}
		delay := c.serverDelay()
		if e == 0 && a.kind == kSlow {
			delay = 5200*ms + r.Int64N(9800*ms)
			g.man.Slow++
		}
		if e == 0 && a.kind == kServerReset {
			t = c.clientData(t, reqKind, reqLen)
			c.add(t+2*ms+r.Int64N(48*ms), true, fRST|fACK, optTS, c.sseq, 0, 0, 0)
			g.man.ServerResets++
			g.finish(c, isn, sisn)
			return
		}
		t = c.exchange(t, reqKind, reqLen, respKind, c.respSize(), delay)
		if e < nex-1 {
			t += c.rtt + c.think()
		}
	}

	// The close.
	if r.Float64() < 0.55 {
		tc := t + c.rtt + int64(c.lognorm(2e6, 1.2, 50e3, 14e6))
		if c.pendingAck != 0 && c.pendingAck < tc {
			c.add(c.pendingAck, false, fACK, optTS, c.cseq, 0, 0, 0)
		}
		c.add(tc, false, fFIN|fACK, optTS, c.cseq, 0, 0, 0)
		ts := tc + 30 + r.Int64N(70)
		c.add(ts, true, fFIN|fACK, optTS, c.sseq, 0, 0, 0)
		c.add(ts+c.rtt, false, fACK, optTS, c.cseq+1, 0, 0, 0)
	} else {
		ts := t + int64(cfg.KeepAlive/time.Microsecond)
		if c.pendingAck != 0 && c.pendingAck < ts+c.rtt {
			c.add(c.pendingAck, false, fACK, optTS, c.cseq, 0, 0, 0)
		}
		c.add(ts, true, fFIN|fACK, optTS, c.sseq, 0, 0, 0)
		c.add(ts+c.rtt, false, fFIN|fACK, optTS, c.cseq, 0, 0, 0)
		c.add(ts+c.rtt+20+r.Int64N(40), true, fACK, optTS, c.sseq+1, 0, 0, 0)
	}
	g.finish(c, isn, sisn)
}

// finish orders the connection's packets in time and fills in what depends
// on what each side had seen when it sent: acknowledgement numbers, TSecr,
// the client's receive window, IP IDs. The capture is on the server: a server
// packet at t follows every client packet captured before it; a client packet
// captured at t was sent after the client received the server's packets
// captured up to t-rtt.
func (g *generator) finish(c *cg, isn, sisn uint32) {
	l := g.local
	slices.SortStableFunc(l, func(a, b pkt) int { return cmp.Compare(a.t, b.t) })
	r := c.r
	cts, sts := r.Uint32(), r.Uint32() // per-connection TSval offsets (Linux randomises them)
	cid, sid := uint16(r.Uint32()), uint16(r.Uint32())
	var cliEnd, cliTS uint32 // the client's next sequence number and last TSval, as the server saw them
	var srvEnd, srvTS uint32 // the same for the server, as the client saw them
	cliSeen, srvSeen := false, false
	var recvd uint32
	j := 0
	k := &g.conns[c.id]
	k.first, k.last = -1, -1
	for i := range l {
		p := &l[i]
		if p.fromServer() {
			p.tsval = sts + uint32(p.t/1000)
			if cliSeen {
				p.ack, p.tsecr = cliEnd, cliTS
			}
			p.win = 509
			if p.flags&fSYN != 0 {
				p.win = 65160
			}
			p.ipid = sid
			sid++
		} else {
			p.tsval = cts + uint32((p.t-c.rtt/2)/1000)
			for ; j < len(l) && l[j].t <= p.t-c.rtt; j++ {
				if q := &l[j]; q.fromServer() {
					e := q.seq + uint32(q.plen)
					if q.flags&(fSYN|fFIN) != 0 {
						e++
					}
					if !srvSeen || int32(e-srvEnd) > 0 {
						srvEnd = e
					}
					recvd += uint32(q.plen)
					srvTS, srvSeen = q.tsval, true
				}
			}
			if srvSeen {
				p.ack, p.tsecr = srvEnd, srvTS
			}
			p.win = uint16(min(502+recvd/64, 20000))
			if p.flags&fSYN != 0 {
				p.win = 64240
			}
			p.ipid = cid
			cid++
			e := p.seq + uint32(p.plen)
			if p.flags&(fSYN|fFIN) != 0 {
				e++
			}
			if !cliSeen || int32(e-cliEnd) > 0 {
				cliEnd = e
			}
			cliTS, cliSeen = p.tsval, true
		}
		if p.flags&fACK == 0 {
			p.ack, p.tsecr = 0, 0
		}
		if p.flags&fRST != 0 && p.opt() == optNone { // the kernel's reply to a SYN for a closed port
			p.tsval, p.tsecr, p.win, p.ipid = 0, 0, 0, 0
		}
		if p.t < 0 || p.t >= g.dur {
			continue
		}
		if k.first < 0 {
			k.first = p.t
		}
		k.last = p.t
		switch {
		case p.flags&(fSYN|fACK) == fSYN:
			g.man.SYNs++
		case p.flags&(fSYN|fACK) == fSYN|fACK:
			g.man.SYNAcks++
		}
		g.pkts = append(g.pkts, *p)
	}
	if k.first >= 0 {
		g.man.Conns++
		if l[0].t < 0 {
			g.man.Partial++
		}
	}
}

// sortPackets puts every connection's packets in one time order (ties in the
// order they were planned).
func (g *generator) sortPackets() {
	g.order = make([]int32, len(g.pkts))
	for i := range g.order {
		g.order[i] = int32(i)
	}
	slices.SortFunc(g.order, func(a, b int32) int {
		if c := cmp.Compare(g.pkts[a].t, g.pkts[b].t); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
}

func (g *generator) peakOpen() {
	type ev struct {
		t int64
		d int
	}
	var evs []ev
	for _, k := range g.conns {
		if k.first >= 0 {
			evs = append(evs, ev{k.first, 1}, ev{k.last, -1})
		}
	}
	slices.SortFunc(evs, func(a, b ev) int {
		if c := cmp.Compare(a.t, b.t); c != 0 {
			return c
		}
		return cmp.Compare(b.d, a.d)
	})
	n := 0
	for _, e := range evs {
		n += e.d
		g.man.PeakOpen = max(g.man.PeakOpen, n)
	}
}
