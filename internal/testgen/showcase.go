package testgen

import (
	"fmt"
	"sort"
	"time"
)

// Showcase plan: 120 s at a web server 192.0.2.10 (:443 and :80), 40 clients.
const (
	showDuration  = 120 * time.Second
	showDropFrom  = 50 * time.Second // SYNs to :443 are dropped (accept queue full) ...
	showDropUntil = 60 * time.Second // ... until here
)

// synBackoff is the client's SYN schedule: Linux's default exponential
// backoff from a 1 s initial RTO.
var synBackoff = []time.Duration{0, sec(1), sec(3), sec(7), sec(15), sec(31)}

// dial plays the client's SYNs from t until one gets through (drop says which
// are lost), then the SYN-ACK and the ACK. giveUp > 0 is the client's connect
// timeout. It returns the time of the ACK and whether the handshake completed.
func dial(k *Conn, t, rtt time.Duration, drop func(time.Duration) bool, giveUp time.Duration) (time.Duration, bool) {
	for _, o := range synBackoff {
		if giveUp > 0 && o >= giveUp {
			return 0, false
		}
		at := t + o
		if drop(at) {
			k.Client.SYN(at, Lost())
			continue
		}
		k.Client.SYN(at)
		k.Server.SYNACK(at + serverDelay)
		k.Client.ACK(at + serverDelay + rtt)
		return at + serverDelay + rtt, true
	}
	return 0, false
}

type showClient struct {
	addr string
	rtt  time.Duration
	port int
}

func (c *showClient) next() string {
	c.port += 1 + int(c.rtt/time.Millisecond)%7
	return fmt.Sprintf("%s:%d", c.addr, c.port)
}

func showcase() *Capture {
	c := NewCapture("showcase.pcapng",
		"2-minute web server capture (192.0.2.10:443 and :80, 40 clients) for make run: SYNs to :443 dropped 50-60 s (unanswered, and answered after retransmits), "+
			"two more answered after a lost SYN, refusals on :8080, a health checker closing with RST every 5 s, one 5.8-s first response, server resets after a request")
	c.Format = PCAPNG
	c.NoExpect = true
	r := &c.rng

	var clients []*showClient
	for i := 0; i < 20; i++ {
		clients = append(clients, &showClient{addr: fmt.Sprintf("198.51.100.%d", 100+i)})
		clients = append(clients, &showClient{addr: fmt.Sprintf("203.0.113.%d", 100+i)})
	}
	for _, cl := range clients {
		cl.rtt = ms(float64(5 + r.intn(76)))
		cl.port = 32768 + r.intn(20000)
	}

	inDrop := func(t time.Duration) bool { return t >= showDropFrom && t < showDropUntil }
	noDrop := func(time.Duration) bool { return false }
	srv := func(port int) string { return fmt.Sprintf("192.0.2.10:%d", port) }

	// session plays one keep-alive connection: requests requests, then a
	// close. It returns false when the handshake never completed.
	session := func(cl *showClient, port int, t time.Duration, requests int, drop func(time.Duration) bool, giveUp time.Duration) bool {
		k := c.Conn(cl.next(), srv(port))
		t, ok := dial(k, t, cl.rtt, drop, giveUp)
		if !ok {
			return false
		}
		for j := 0; j < requests; j++ {
			size := 150 + r.intn(1100)
			if j > 0 {
				t += ms(float64(200 + r.intn(2500)))
			}
			t = request(k, t+us(20), cl.rtt, us(int64(150+r.intn(900))), "/api/item", size)
		}
		who := "client"
		if r.intn(5) == 0 {
			who = "server" // keep-alive timeout
			t += sec(5)
		}
		closeFIN(k, who, t+ms(float64(1+r.intn(300))), cl.rtt)
		return true
	}

	// Ordinary traffic: 2 to 4 connections per client, mostly HTTPS. Clients
	// whose SYN falls in the drop window either give up after 5 s (curl
	// --connect-timeout 5) or keep retrying until the server recovers.
	type start struct {
		cl    *showClient
		t     time.Duration
		port  int
		nreq  int
		patie bool
	}
	var starts []start
	for i, cl := range clients {
		n := 2 + r.intn(3)
		for j := 0; j < n; j++ {
			port := 443
			if r.intn(4) == 0 {
				port = 80
			}
			t := time.Duration(r.intn(int((showDuration-12*time.Second)/time.Millisecond))) * time.Millisecond
			starts = append(starts, start{cl: cl, t: t + time.Duration(i)*us(37), port: port, nreq: 1 + r.intn(3), patie: r.intn(2) == 0})
		}
	}
	// Make sure the drop window has attempts of both kinds.
	for i, t := range []float64{50.3, 51.5, 52.1, 54.7, 55.0, 56.2, 57.9, 58.5} {
		starts = append(starts, start{cl: clients[(i*7+3)%len(clients)], t: sec(t), port: 443, nreq: 1, patie: i%2 == 0})
	}
	sort.SliceStable(starts, func(i, j int) bool { return starts[i].t < starts[j].t })
	for _, s := range starts {
		drop, giveUp := noDrop, time.Duration(0)
		if s.port == 443 {
			drop = inDrop
			if !s.patie {
				giveUp = sec(5)
			}
		}
		session(s.cl, s.port, s.t, s.nreq, drop, giveUp)
	}

	// Two more connections whose first SYN is lost on the way.
	for i, t := range []float64{21.4, 95.2} {
		first := sec(t)
		session(clients[11+i], 443, first, 2, func(at time.Duration) bool { return at == first }, 0)
	}

	// Refused: nothing listens on :8080; two clients retry once with a new port.
	for i, t := range []float64{12.5, 13.6, 70.1, 71.2, 104.8} {
		k := c.Conn(clients[(i*5+1)%len(clients)].next(), srv(8080))
		k.Client.SYN(sec(t))
		k.Server.RST(sec(t) + serverDelay)
	}

	// Health checker: every 5 s, GET /healthz, closes with RST.
	hc := &showClient{addr: "198.51.100.7", rtt: us(300), port: 40000}
	for t := sec(2); t < showDuration; t += sec(5) {
		k := c.Conn(hc.next(), srv(80))
		at := handshake(k, t, hc.rtt)
		k.Client.Send(at+us(10), []byte("GET /healthz HTTP/1.1\r\nHost: 192.0.2.10\r\n\r\n"))
		k.Server.Send(at+us(200), []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
		k.Client.RST(at + us(200) + hc.rtt + us(15))
	}

	// One slow first response: 5.8 s.
	{
		cl := clients[17]
		k := c.Conn(cl.next(), srv(443))
		t := handshake(k, sec(33.3), cl.rtt)
		k.Client.Send(t+us(20), requestBytes(k, "/report"))
		k.Server.ACK(t + us(20) + ms(40))
		last := respond(k.Server, t+us(20)+sec(5.8), responseBytes(k, 4000))
		k.Client.ACK(last + cl.rtt)
		closeFIN(k, "client", last+cl.rtt+ms(2), cl.rtt)
	}

	// Server resets after a request (the application crashes on an upload).
	for i, t := range []float64{40.2, 77.7, 101.1} {
		cl := clients[(i*11+5)%len(clients)]
		k := c.Conn(cl.next(), srv(80))
		at := handshake(k, sec(t), cl.rtt)
		k.Client.Send(at+us(20), requestBytes(k, "/upload"))
		k.Server.RST(at + us(20) + ms(2))
	}
	return c
}
