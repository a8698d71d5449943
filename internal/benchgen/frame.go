package benchgen

import (
	"bufio"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"strconv"
)

var (
	serverMAC = [6]byte{0x02, 0x00, 0xc0, 0x00, 0x02, 0x0a}
	routerMAC = [6]byte{0x02, 0x00, 0xc0, 0x00, 0x02, 0x01}
	optLens   = [...]int{optNone: 0, optSYN: 20, optTS: 12, optMSS: 4}
	// MSS 1460, SACK permitted, timestamps, NOP, window scale 7
	synOptions = [20]byte{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 3, 7}
)

const (
	fillSize  = 1 << 20
	fillMask  = fillSize - 1
	tlsRecord = 5 + 16384 + 17 // a full TLS 1.3 application data record: header, plaintext, content type, tag
)

// filler is the payload every segment's bytes are copied from; the tail
// repeats the head so a segment never wraps.
var filler = func() []byte {
	b := make([]byte, fillSize+2048)
	r := rand.New(rand.NewPCG(0xf111e7, 1))
	for i := 0; i < fillSize; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	copy(b[fillSize:], b)
	return b
}()

const (
	healthReq  = "GET /healthz HTTP/1.1\r\nHost: 192.0.2.10\r\nUser-Agent: lb-healthcheck/1.0\r\nAccept: */*\r\n\r\n"
	healthResp = "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nOK\n"

	httpReqHead = "GET /static/00000000.js HTTP/1.1\r\nHost: www.example.com\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
		"Accept: */*\r\nAccept-Encoding: gzip, deflate, br\r\nCookie: sid="
	httpRespHead = "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Mon, 02 Mar 2026 09:00:00 GMT\r\n" +
		"Content-Type: application/octet-stream\r\nContent-Length: "
	httpRespTail = "\r\nConnection: keep-alive\r\n\r\n"

	serverHelloLen = 127 + 6 // ServerHello record, ChangeCipherSpec record
)

// httpRespHeaderLen is the length of the headers of an n-byte response: the
// Content-Length value takes d characters (a space pads it when the body's
// length has d-1 digits: n = 1153 has headers of 153 bytes and a body of 1000
// or 999).
func httpRespHeaderLen(n int) int {
	fixed := len(httpRespHead) + len(httpRespTail)
	for d := 1; d < 12; d++ {
		if len(strconv.Itoa(n-fixed-d)) <= d {
			return fixed + d
		}
	}
	panic("benchgen: response too short for its headers")
}

// writer writes a classic pcap (microseconds, Ethernet).
type writer struct {
	w       *bufio.Writer
	g       *generator
	base    int64
	packets int64
	bytes   int64
	buf     [16 + 14 + 20 + 60 + mss + 64]byte
	pre     [2048]byte
}

func newWriter(out io.Writer, g *generator) *writer {
	w := &writer{w: bufio.NewWriterSize(out, 8<<20), g: g, base: Base.Unix()}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 262144)
	binary.LittleEndian.PutUint32(h[20:], 1) // LINKTYPE_ETHERNET
	w.w.Write(h[:])
	w.bytes = 24
	return w
}

// emit writes the record header for the frame of length n in w.buf[16:].
func (w *writer) emit(t int64, n int) {
	b := w.buf[:16]
	binary.LittleEndian.PutUint32(b[0:], uint32(w.base+t/1e6))
	binary.LittleEndian.PutUint32(b[4:], uint32(t%1e6))
	binary.LittleEndian.PutUint32(b[8:], uint32(n))
	binary.LittleEndian.PutUint32(b[12:], uint32(n))
	w.w.Write(w.buf[:16+n])
	w.packets++
	w.bytes += int64(16 + n)
}

func sum16(b []byte, s uint32) uint32 {
	for len(b) >= 8 {
		s += uint32(binary.BigEndian.Uint16(b)) + uint32(binary.BigEndian.Uint16(b[2:])) +
			uint32(binary.BigEndian.Uint16(b[4:])) + uint32(binary.BigEndian.Uint16(b[6:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		s += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// ipHeader fills a 20-byte IPv4 header with its checksum.
func ipHeader(ip []byte, total int, id uint16, df bool, ttl uint8, src, dst [4]byte) {
	ip[0], ip[1] = 0x45, 0
	binary.BigEndian.PutUint16(ip[2:], uint16(total))
	binary.BigEndian.PutUint16(ip[4:], id)
	ip[6], ip[7] = 0, 0
	if df {
		ip[6] = 0x40
	}
	ip[8], ip[9], ip[10], ip[11] = ttl, 6, 0, 0
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	binary.BigEndian.PutUint16(ip[10:], ^fold(sum16(ip[:20], 0)))
}

// tcpChecksum sets the TCP checksum of seg (header and payload); partial
// leaves the pseudo-header sum only, as transmit checksum offload does.
func tcpChecksum(seg []byte, src, dst [4]byte, partial bool) {
	s := sum16(src[:], 0)
	s = sum16(dst[:], s)
	s += 6 + uint32(len(seg))
	seg[16], seg[17] = 0, 0
	if partial {
		binary.BigEndian.PutUint16(seg[16:], fold(s))
		return
	}
	binary.BigEndian.PutUint16(seg[16:], ^fold(sum16(seg, s)))
}

func putOptions(o []byte, kind uint8, tsval, tsecr uint32) {
	switch kind {
	case optSYN:
		copy(o, synOptions[:])
		binary.BigEndian.PutUint32(o[8:], tsval)
		binary.BigEndian.PutUint32(o[12:], tsecr)
	case optTS:
		o[0], o[1], o[2], o[3] = 1, 1, 8, 10
		binary.BigEndian.PutUint32(o[4:], tsval)
		binary.BigEndian.PutUint32(o[8:], tsecr)
	case optMSS:
		o[0], o[1], o[2], o[3] = 2, 4, 0x05, 0xb4
	}
}

// conn writes one planned packet of a connection.
func (w *writer) conn(p *pkt) {
	k := &w.g.conns[p.conn]
	cl := &w.g.clients[k.cli]
	b := w.buf[16:]
	src, dst := cl.ip, Server
	sport, dport := k.cport, k.sport
	ttl := cl.ttl
	if p.fromServer() {
		copy(b[0:6], routerMAC[:])
		copy(b[6:12], serverMAC[:])
		src, dst = dst, src
		sport, dport = dport, sport
		ttl = 64
	} else {
		copy(b[0:6], serverMAC[:])
		copy(b[6:12], routerMAC[:])
	}
	b[12], b[13] = 0x08, 0x00
	opt := p.opt()
	thl := 20 + optLens[opt]
	total := 20 + thl + int(p.plen)
	ipHeader(b[14:34], total, p.ipid, true, ttl, src, dst)
	seg := b[34 : 34+thl+int(p.plen)]
	binary.BigEndian.PutUint16(seg[0:], sport)
	binary.BigEndian.PutUint16(seg[2:], dport)
	binary.BigEndian.PutUint32(seg[4:], p.seq)
	binary.BigEndian.PutUint32(seg[8:], p.ack)
	seg[12], seg[13] = byte(thl/4)<<4, p.flags
	binary.BigEndian.PutUint16(seg[14:], p.win)
	seg[18], seg[19] = 0, 0
	putOptions(seg[20:thl], opt, p.tsval, p.tsecr)
	if p.plen > 0 {
		w.fill(seg[thl:], &w.g.msgs[p.msg], p.off)
	}
	tcpChecksum(seg, src, dst, p.fromServer() && opt != optNone)
	w.emit(p.t, 14+total)
}

// fill writes the bytes [off, off+len(dst)) of message m.
func (w *writer) fill(dst []byte, m *msg, off uint32) {
	n := uint32(len(dst))
	pos := (m.seed + off) & fillMask
	copy(dst, filler[pos:pos+n])
	if off < uint32(m.prefix) {
		copy(dst, w.prefix(m)[off:])
	}
	switch m.kind {
	case mTLSServer, mTLSClientFR, mTLSData:
		start := uint32(m.prefix)
		var k uint32
		if off > start {
			k = (off - start) / tlsRecord
		}
		for h := start + k*tlsRecord; h < off+n; h += tlsRecord {
			l := min(tlsRecord, m.len-h) - 5
			hdr := [5]byte{0x17, 3, 3, byte(l >> 8), byte(l)}
			for i := range uint32(5) {
				if p := h + i; p >= off && p < off+n {
					dst[p-off] = hdr[i]
				}
			}
		}
	}
}

// prefix returns the bytes of m before its filler or its first TLS record.
func (w *writer) prefix(m *msg) []byte {
	b := w.pre[:0]
	rnd := filler[m.seed : m.seed+64]
	switch m.kind {
	case mHealthReq:
		b = append(b, healthReq...)
	case mHealthResp:
		b = append(b, healthResp...)
	case mHTTPReq:
		b = append(b, httpReqHead...)
		for i := range 8 { // the object's name
			b[len("GET /static/")+i] = "0123456789abcdef"[m.seed>>(28-4*i)&15]
		}
		for len(b) < int(m.len)-4 {
			b = append(b, 'a'+filler[m.seed+uint32(len(b))]%26)
		}
		b = append(b, "\r\n\r\n"...)
	case mHTTPResp:
		hl := int(m.prefix)
		b = append(b, httpRespHead...)
		for range hl - len(httpRespHead) - len(httpRespTail) - len(strconv.Itoa(int(m.len)-hl)) {
			b = append(b, ' ')
		}
		b = strconv.AppendInt(b, int64(int(m.len)-hl), 10)
		b = append(b, httpRespTail...)
	case mTLSHello:
		b = clientHello(b, int(m.len), rnd)
	case mTLSServer:
		b = append(b, 0x16, 3, 3, 0, 122, 2, 0, 0, 118, 3, 3)
		b = append(b, rnd[:32]...) // server random
		b = append(b, 32)
		b = append(b, rnd[32:64]...) // session ID echo
		b = append(b, 0x13, 0x01, 0, 0, 46, 0, 0x2b, 0, 2, 3, 4, 0, 0x33, 0, 36, 0, 0x1d, 0, 32)
		b = append(b, filler[m.seed+64:m.seed+96]...) // key share
		b = append(b, 0x14, 3, 3, 0, 1, 1)
	case mTLSClientFR:
		b = append(b, 0x14, 3, 3, 0, 1, 1)
	}
	return b
}

// clientHello appends a TLS 1.3 ClientHello record of n bytes (padded with
// the padding extension).
func clientHello(b []byte, n int, rnd []byte) []byte {
	b = append(b, 0x16, 3, 1, byte((n-5)>>8), byte(n-5), 1, 0, byte((n-9)>>8), byte(n-9), 3, 3)
	b = append(b, rnd[:32]...)
	b = append(b, 32)
	b = append(b, rnd[32:64]...)
	b = append(b, 0, 6, 0x13, 1, 0x13, 2, 0x13, 3, 1, 0)
	ext := n - len(b) - 2
	b = append(b, byte(ext>>8), byte(ext))
	b = append(b, 0, 0, 0, 20, 0, 18, 0, 0, 15)
	b = append(b, "www.example.com"...)
	b = append(b, 0, 0x2b, 0, 3, 2, 3, 4)
	b = append(b, 0, 0x0a, 0, 4, 0, 2, 0, 0x1d)
	b = append(b, 0, 0x33, 0, 38, 0, 36, 0, 0x1d, 0, 32)
	b = append(b, rnd[:32]...)
	b = append(b, 0, 0x0d, 0, 4, 0, 2, 4, 3)
	pad := n - len(b) - 4
	b = append(b, 0, 0x15, byte(pad>>8), byte(pad))
	for range pad {
		b = append(b, 0)
	}
	return b
}

// flood writes one spoofed SYN: 75% shaped like hping3's (no options, window
// 512, TTL 64, no DF), 25% with an MSS option, random window and TTL.
func (w *writer) flood(t int64, r *rand.Rand) {
	b := w.buf[16:]
	copy(b[0:6], serverMAC[:])
	copy(b[6:12], routerMAC[:])
	b[12], b[13] = 0x08, 0x00
	var src [4]byte
	for {
		binary.BigEndian.PutUint32(src[:], r.Uint32())
		if o := src[0]; o != 0 && o != 127 && o < 224 {
			break
		}
	}
	x, y := r.Uint64(), r.Uint64()
	opt, ttl, win, df := uint8(optNone), uint8(64), uint16(512), false
	if y&3 == 0 {
		opt, ttl, win, df = optMSS, uint8(32+(y>>8)%200), uint16(1024+(y>>16)%64512), y&4 != 0
	}
	thl := 20 + optLens[opt]
	ipHeader(b[14:34], 20+thl, uint16(x>>48), df, ttl, src, Server)
	seg := b[34 : 34+thl]
	binary.BigEndian.PutUint16(seg[0:], uint16(1024+(x>>32&0xffff)%64512))
	binary.BigEndian.PutUint16(seg[2:], 80)
	binary.BigEndian.PutUint32(seg[4:], uint32(x))
	binary.BigEndian.PutUint32(seg[8:], 0)
	seg[12], seg[13] = byte(thl/4)<<4, fSYN
	binary.BigEndian.PutUint16(seg[14:], win)
	seg[18], seg[19] = 0, 0
	putOptions(seg[20:], opt, 0, 0)
	tcpChecksum(seg, src, Server, false)
	n := 34 + thl
	for ; n < 60; n++ { // received frames keep the Ethernet padding
		b[n] = 0
	}
	w.emit(t, n)
}
