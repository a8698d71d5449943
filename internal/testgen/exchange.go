package testgen

import (
	"fmt"
	"strings"
	"time"
)

// Helpers that play common exchanges. Times are as seen at the server, where
// the capture is taken: the server answers within tens of microseconds, the
// client's reaction arrives one RTT after the server's packet left.

// serverDelay is how long the server's kernel takes to answer a segment.
const serverDelay = 40 * time.Microsecond

// handshake plays SYN, SYN-ACK, ACK from t and returns the time of the ACK.
func handshake(k *Conn, t, rtt time.Duration, opts ...Opt) time.Duration {
	k.Client.SYN(t, opts...)
	k.Server.SYNACK(t + serverDelay)
	k.Client.ACK(t + serverDelay + rtt)
	return t + serverDelay + rtt
}

// request sends one request at t, the server answers after think, the client
// acknowledges. It returns the time of the client's ACK.
func request(k *Conn, t, rtt, think time.Duration, path string, size int) time.Duration {
	k.Client.Send(t, requestBytes(k, path))
	last := respond(k.Server, t+think, responseBytes(k, size))
	k.Client.ACK(last + rtt)
	return last + rtt
}

// respond sends payload in MSS-sized segments 12 µs apart and returns the
// time of the last one.
func respond(s *Side, t time.Duration, payload []byte) time.Duration {
	mss := s.peer.sent.MSS
	if mss == 0 {
		mss = 536
	}
	if s.sent.TS && s.peer.sent.TS {
		mss -= 12
	}
	for len(payload) > 0 {
		n := min(len(payload), mss)
		if n < len(payload) {
			s.Segment(t, ACK, Payload(payload[:n]))
			t += 12 * time.Microsecond
		} else {
			s.Send(t, payload[:n])
		}
		payload = payload[n:]
	}
	return t
}

// closeFIN closes the connection with FIN from who ("client" or "server")
// at t, the other side's FIN right behind, and the last ACK. It returns the
// time of the last packet.
func closeFIN(k *Conn, who string, t, rtt time.Duration) time.Duration {
	if who == "client" {
		k.Client.FIN(t)
		k.Server.FIN(t + serverDelay)
		k.Client.ACK(t + serverDelay + rtt)
		return t + serverDelay + rtt
	}
	k.Server.FIN(t)
	k.Client.FIN(t + rtt)
	k.Server.ACK(t + rtt + serverDelay)
	return t + rtt + serverDelay
}

// web plays a whole short connection: handshake, one request of size bytes
// of response, FIN close by who after linger. It returns the last packet's time.
func web(k *Conn, t, rtt time.Duration, path string, size int, who string) time.Duration {
	t = handshake(k, t, rtt)
	t = request(k, t+20*time.Microsecond, rtt, 300*time.Microsecond, path, size)
	return closeFIN(k, who, t+ms(1), rtt)
}

// requestBytes is an HTTP/1.1 GET for port 80 and 8080, a TLS application
// data record for anything else.
func requestBytes(k *Conn, path string) []byte {
	if isHTTP(k) {
		return []byte(fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: testgen/1\r\nAccept: */*\r\n\r\n", path, k.Server.Addr.Addr()))
	}
	return tlsRecord(120 + len(path))
}

// responseBytes is an HTTP response with a size-byte body, or a TLS record.
func responseBytes(k *Conn, size int) []byte {
	if isHTTP(k) {
		h := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", size)
		return append([]byte(h), filler(size)...)
	}
	return tlsRecord(size)
}

func isHTTP(k *Conn) bool {
	p := k.Server.Addr.Port()
	return p == 80 || p == 8080
}

// tlsRecord is one TLS 1.2-framed application data record of n bytes in all.
func tlsRecord(n int) []byte {
	n = max(n, 6)
	b := []byte{0x17, 0x03, 0x03, byte((n - 5) >> 8), byte(n - 5)}
	return append(b, filler(n-5)...)
}

// padTo pads an HTTP request to exactly n bytes with an X-Pad header.
func padTo(req string, n int) []byte {
	head := strings.TrimSuffix(req, "\r\n")
	pad := n - len(head) - len("X-Pad: \r\n\r\n")
	if pad < 0 {
		panic("testgen: request longer than the padding target")
	}
	return []byte(head + "X-Pad: " + strings.Repeat("x", pad) + "\r\n\r\n")
}
