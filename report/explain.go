package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/synscope/synscope/analyze"
)

// This file turns the incident layer's numbers into words for a reader who
// did not capture the traffic: a title, a severity, the evidence, and
// suspected causes ranked with what to check next.

// NewIncidents converts the incident analysis.
func NewIncidents(res *analyze.Result, sum *analyze.Summary) ([]Incident, Verdict) {
	out := make([]Incident, 0, len(res.Incidents))
	for _, inc := range res.Incidents {
		out = append(out, newIncident(inc, res.Slow))
	}
	v := Verdict{Rows: []VerdictRow{}}
	for _, r := range res.Verdict {
		row := VerdictRow{Category: r.Category, Meaning: r.Meaning, Attempts: r.Attempts, Incidents: r.Incidents}
		if sum.Attempts > 0 {
			row.Share = round4(float64(r.Attempts) / float64(sum.Attempts))
		}
		v.Rows = append(v.Rows, row)
	}
	return out, v
}

// NewSeries converts the per-bucket counts.
func NewSeries(s *analyze.Series) *Series {
	if len(s.Attempts) == 0 {
		return nil
	}
	return &Series{BucketS: s.Width.Seconds(), Start: TimeString(s.Start), Attempts: s.Attempts, Unanswered: s.Unanswered,
		SynRetransmits: s.SynRetransmits, SynackRetransmits: s.SynAckRetransmits, Resets: s.Resets}
}

// NewDistributions converts the RTT and TTFB histograms.
func NewDistributions(res *analyze.Result) *Distributions {
	conv := func(h *analyze.Histogram) Histogram {
		out := Histogram{Bounds: analyze.HistBoundsMs, Counts: h.Counts, Count: h.Count}
		if h.Count > 0 {
			out.P50Ms, out.P90Ms, out.P99Ms = ms(h.Quantile(0.5)), ms(h.Quantile(0.9)), ms(h.Quantile(0.99))
		}
		return out
	}
	return &Distributions{HandshakeRTT: conv(&res.RTT), TTFB: conv(&res.TTFB)}
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

func secs(d time.Duration) string {
	s := strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + " s"
}

func dshort(d time.Duration) string {
	if d < time.Second {
		return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) + " ms"
	}
	return secs(d)
}

func schedule(offs []time.Duration) string {
	parts := make([]string, len(offs))
	for i, d := range offs {
		s := strconv.FormatFloat(d.Seconds(), 'f', 2, 64)
		parts[i] = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return strings.Join(parts, ", ") + " s"
}

func plural(n uint64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return num(n) + " " + many
}

func span(inc *analyze.Incident) string {
	a, b := time.Unix(0, inc.Start).UTC(), time.Unix(0, inc.End).UTC()
	if a.Format("2006-01-02") == b.Format("2006-01-02") {
		return a.Format("2006-01-02 15:04:05") + "–" + b.Format("15:04:05") + " UTC"
	}
	return a.Format("2006-01-02 15:04:05") + " – " + b.Format("2006-01-02 15:04:05") + " UTC"
}

// NewIncident converts one incident (for a live run's stream of closed
// incidents); slow is the slow-response threshold.
func NewIncident(inc *analyze.Incident, slow time.Duration) Incident { return newIncident(inc, slow) }

func newIncident(inc *analyze.Incident, slow time.Duration) Incident {
	out := Incident{
		ID:             inc.ID,
		Kind:           inc.Kind.String(),
		Start:          TimeString(inc.Start),
		End:            TimeString(inc.End),
		Server:         inc.Server.String(),
		Attempts:       inc.Attempts,
		Clients:        inc.Clients,
		ServerAttempts: inc.ServerAttempts,
		Samples:        []Attempt{},
		Evidence:       []string{},
		Causes:         []Cause{},
		SamplesOmitted: inc.SamplesOmitted,
	}
	if inc.Server.Port() == 0 {
		out.Server = inc.Server.Addr().String()
	}
	if inc.ServerAttempts > 0 {
		out.Share = round4(float64(inc.Attempts) / float64(inc.ServerAttempts))
	}
	for _, a := range inc.Samples {
		out.Samples = append(out.Samples, NewAttempt(a, true))
	}
	pctShare := strconv.FormatFloat(100*out.Share, 'f', 0, 64) + "%"
	who := plural(inc.Clients, "client", "clients")
	srv := out.Server
	when := span(inc)
	ev := func(format string, args ...any) { out.Evidence = append(out.Evidence, fmt.Sprintf(format, args...)) }
	cause := func(conf, c, check string, evidence ...string) {
		out.Causes = append(out.Causes, Cause{Cause: c, Confidence: conf, Check: check, Evidence: evidence})
	}

	switch inc.Kind {
	case analyze.IncUnansweredSYN:
		out.Schedule = schedule(inc.Schedule)
		out.Severity = "warning"
		if out.Share >= 0.05 && inc.Attempts >= 3 {
			out.Severity = "critical"
		}
		flood, pattern := spoofedFlood(inc), ""
		if flood {
			pattern = ", nearly one SYN each and none retransmitted: a SYN flood's pattern"
		}
		out.Title = fmt.Sprintf("%s to %s got no answer at all (%s of the attempts to it), from %s%s, %s",
			plural(inc.Attempts, "connection attempt", "connection attempts"), srv, pctShare, who, pattern, when)
		ev("%s of %s attempts to %s in this window got neither SYN-ACK, RST nor ICMP error", num(inc.Attempts), num(inc.ServerAttempts), srv)
		if len(inc.Schedule) > 1 {
			ev("clients kept retransmitting their SYN: at %s after the first (their kernels' retry schedule)", out.Schedule)
		}
		ev("%s affected", who)
		partial := out.Share < 0.95
		if partial {
			cause("medium", "SYNs dropped intermittently before the listening socket: a firewall rate limit, SYN-flood protection, a full conntrack table, or a load balancer dropping new flows",
				"on the server: nft list ruleset / iptables -L -v -n counters, conntrack -S (insert_failed, drop), dmesg for 'nf_conntrack: table full'; on the path: the provider's firewall/LB logs for the listed times",
				fmt.Sprintf("only %s of attempts failed while others to the same port succeeded", pctShare))
			cause("medium", "the listen or accept queue overflowed (the application did not accept() fast enough); the kernel then drops SYNs silently",
				"nstat -az TcpExtListenOverflows TcpExtListenDrops TcpExtTCPReqQFullDrop before and after; ss -ltn (Recv-Q against the backlog) on the listener")
		} else {
			cause("high", "nothing answered any SYN: the service, its host, or the path to it was down or blackholed for this window",
				"whether the server host was up and reachable (ping/ARP), firewall rules that drop (not reject) the port, routing toward the server")
		}
		if flood {
			cause("medium", "a SYN flood from forged (spoofed) source addresses: nearly every attempt comes from an address seen once, and none retransmits its SYN as a real client's kernel would (real clients that each try once and give up within a second look the same: dual-stack clients falling back from a dead IPv6 address, short connect timeouts)",
				"what the flood did to the server: nstat -az TcpExtListenOverflows TcpExtListenDrops TcpExtTCPReqQFullDrop TcpExtSyncookiesSent, 'Possible SYN flooding' in dmesg, net.ipv4.tcp_syncookies; upstream, the provider's DDoS protection; whether real clients were hurt (the other incidents in the same window)",
				fmt.Sprintf("%s from %s, no SYN retransmitted", plural(inc.Attempts, "attempt", "attempts"), who))
		}
		cause("low", "the SYN-ACKs were sent but lost on the way back (asymmetric routing, a stateful device on the return path)",
			"capture on the server itself: if SYN-ACKs leave it, the loss is on the return path")
	case analyze.IncSYNRetransmit:
		out.Severity = "warning"
		out.DelayP50Ms, out.DelayMaxMs = ms(inc.DelayP50), ms(inc.DelayMax)
		out.Title = fmt.Sprintf("%s to %s succeeded only after the client retransmitted its SYN (connect delayed by %s median, %s max), %s",
			plural(inc.Attempts, "connection", "connections"), srv, dshort(inc.DelayP50), dshort(inc.DelayMax), when)
		ev("the first SYN of each of these %s got no answer; a retransmitted one did", plural(inc.Attempts, "attempt", "attempts"))
		ev("added connect delay: median %s, maximum %s — what users see as a slow or timed-out connect", dshort(inc.DelayP50), dshort(inc.DelayMax))
		ev("%s affected, %s of the attempts to %s in this window", who, pctShare, srv)
		cause("medium", "SYNs dropped intermittently: firewall or load balancer rate limits, SYN-flood protection, conntrack pressure, or a brief accept-queue overflow",
			"nstat -az TcpExtListenDrops TcpExtListenOverflows TcpExtTCPReqQFullDrop; firewall counters; conntrack -S")
		cause("low", "timestamp-related drops (PAWS) when several clients share one NAT address and the server checks timestamps",
			"the timestamps finding for this server, if any; nstat TcpExtPAWSActive TcpExtPAWSEstab; whether the clients sit behind NAT")
	case analyze.IncSYNACKRetransmit:
		out.Severity = "warning"
		out.Title = fmt.Sprintf("%s re-sent its SYN-ACK in %s, %s", srv, plural(inc.Attempts, "handshake", "handshakes"), when)
		ev("the server's SYN-ACK was not acknowledged in time in %s, so it sent it again", plural(inc.Attempts, "attempt", "attempts"))
		cause("medium", "SYN-ACKs or the clients' ACKs were lost between client and server (the return path, or the clients' side)",
			"capture on the client side, or compare with the path's loss; if clients also retransmit SYNs, the SYN-ACKs did not reach them")
		cause("low", "clients that send a SYN and never complete (scanners, or clients that gave up): the server retries its SYN-ACK by design",
			"whether these clients are scanners (many ports, no data) — see their attempts")
	case analyze.IncRefused:
		out.Severity = "warning"
		out.BySide = map[string]uint64{}
		if n := inc.BySide[analyze.RefusedRST]; n > 0 {
			out.BySide["rst"] = n
		}
		if n := inc.BySide[analyze.RefusedICMP]; n > 0 {
			out.BySide["icmp"] = n
		}
		out.Title = fmt.Sprintf("%s to %s refused, %s", plural(inc.Attempts, "connection", "connections"), srv, when)
		if n := inc.BySide[analyze.RefusedRST]; n > 0 {
			ev("%s answered with RST: nothing accepted connections on %s", plural(n, "SYN was", "SYNs were"), srv)
			cause("high", "no process listening on the port (service down, restarting, or bound to another address), or a firewall rule rejecting with tcp-reset",
				"ss -ltnp on the server for the port at those times; service restarts in its logs; reject rules (nft/iptables) for the port")
		}
		if n := inc.BySide[analyze.RefusedICMP]; n > 0 {
			ev("%s answered with ICMP destination unreachable (type %d code %d) from %s", plural(n, "SYN was", "SYNs were"), inc.ICMPCodes[0], inc.ICMPCodes[1], inc.ICMPFrom)
			cause("high", fmt.Sprintf("%s rejected the connection with ICMP (a firewall reject rule, no route, or an administrative prohibition)", inc.ICMPFrom),
				"the rules of the device that sent the ICMP error; routing toward the server")
		}
		ev("%s affected", who)
	case analyze.IncReset:
		out.Severity = "warning"
		out.BySide = map[string]uint64{}
		for s := analyze.SideClient; s <= analyze.SideServer; s++ {
			if n := inc.BySide[s]; n > 0 {
				out.BySide[s.String()] = n
			}
		}
		out.ByPhase = map[string]uint64{}
		for p := analyze.PhaseBeforeData; p <= analyze.PhaseAfterResponse; p++ {
			if n := inc.ByPhase[p]; n > 0 {
				out.ByPhase[p.String()] = n
			}
		}
		out.Title = fmt.Sprintf("%s to %s reset after the handshake (%s), %s", plural(inc.Attempts, "connection", "connections"), srv, sides(out.BySide), when)
		ev("first RST after the handshake: %s", sides(out.BySide))
		ev("phase: %s", phases(out.ByPhase))
		if inc.BySide[analyze.SideServer] > 0 {
			conf := "medium"
			if inc.ByPhase[analyze.PhaseAfterRequest] > 0 {
				conf = "high"
			}
			cause(conf, "the server side aborted connections (application crash or exception, a proxy or load balancer timeout, a full backlog, or SO_LINGER 0 on close)",
				"application and proxy logs at these times; whether the resets follow a request (after_request) — then the server failed while handling it")
		}
		if inc.BySide[analyze.SideClient] > 0 {
			cause("medium", "clients aborted (their own timeouts, cancelled requests, or closing with SO_LINGER 0)",
				"client timeouts against the server's response time; the slow_response incidents, if any")
		}
	case analyze.IncHealthcheckRST:
		out.Severity = "notable"
		out.Prober = inc.Prober.String()
		iv, jt := inc.Interval.Seconds(), float64(inc.Jitter)/1e6
		out.IntervalS, out.JitterMs = &iv, &jt
		out.Title = fmt.Sprintf("%s probes %s every %s (±%s) and closes each probe with RST instead of FIN: a health checker, not a fault",
			out.Prober, srv, secs(inc.Interval), dshort(inc.Jitter))
		ev("%s short connections from %s, started every %s (median; jitter %s)", num(inc.Attempts), out.Prober, secs(inc.Interval), dshort(inc.Jitter))
		ev("each completes, exchanges little data, and is closed by the prober's RST; these resets are not counted as reset incidents")
		cause("high", "a load balancer or monitoring health check that closes with SO_LINGER 0 (RST)",
			"the health-check settings of the device or monitor at "+out.Prober+"; if the resets clutter logs or alerts, make it close with FIN")
	case analyze.IncSlowResponse:
		out.Severity = "warning"
		out.DelayP50Ms, out.DelayMaxMs = ms(inc.DelayP50), ms(inc.DelayMax)
		out.Title = fmt.Sprintf("%s answered more than %s after the request (median %s, max %s), with a normal handshake: the application was slow, %s",
			plural(inc.Attempts, "request to "+srv+" was", "requests to "+srv+" were"), secs(slow), dshort(inc.DelayP50), dshort(inc.DelayMax), when)
		ev("time from the client's first data to the server's first data: median %s, maximum %s", dshort(inc.DelayP50), dshort(inc.DelayMax))
		ev("the TCP handshake completed normally: the network delivered the request; the delay is the application's")
		cause("high", "the application (or a backend it waits on: database, upstream API, lock) was slow to produce its first byte",
			"application and backend logs and latency metrics at these times; slow-query logs; thread or worker pool saturation")
	case analyze.IncTimestamps:
		t := inc.TS
		out.Severity = "notable"
		out.Timestamps = &TSFinding{SynsOffering: t.SynsOffering, SynsNotOffering: t.SynsNotOffering, SynacksWithTS: t.SynacksWithTS,
			SynacksWithoutTS: t.SynacksWithoutTS, PAWSRejects: t.PAWSRejects}
		if t.SynsOffering > 0 {
			v := round4(float64(t.UnansweredWithTS) / float64(t.SynsOffering))
			out.Timestamps.UnansweredWithTS = &v
		}
		if t.SynsNotOffering > 0 {
			v := round4(float64(t.UnansweredNoTS) / float64(t.SynsNotOffering))
			out.Timestamps.UnansweredNoTS = &v
		}
		switch {
		case t.Declines && t.RateDiffers:
			out.Severity = "warning"
			out.Title = fmt.Sprintf("%s declines the TCP timestamp option that clients offer, and SYNs with and without it fare differently", srv)
		case t.Declines:
			out.Title = fmt.Sprintf("%s declines the TCP timestamp option offered by its clients", srv)
		case !t.RateDiffers:
			out.Severity = "warning"
			out.Title = fmt.Sprintf("the kernel of %s rejected %s by PAWS: their timestamps were older than the ones it kept for the same 4-tuple",
				srv, plural(t.PAWSRejects, "SYN", "SYNs"))
		default:
			out.Severity = "warning"
			out.Title = fmt.Sprintf("SYNs to %s go unanswered at different rates with and without the TCP timestamp option", srv)
		}
		if t.Declines {
			ev("%s of %s answered SYNs that offered timestamps got a SYN-ACK without them", num(t.SynacksWithoutTS), num(t.SynacksWithTS+t.SynacksWithoutTS))
			cause("high", "the server runs with net.ipv4.tcp_timestamps=0 (or a middlebox strips the option); harmless alone, but servers behind one address with different settings break PAWS and RTT estimates",
				"sysctl net.ipv4.tcp_timestamps on this server and on its siblings behind the same address; any firewall or LB option rewriting")
		}
		if t.PAWSRejects > 0 {
			ev("%s dropped by the server's kernel with a PAWS reason (kfree_skb)", plural(t.PAWSRejects, "attempt's SYN was", "attempts' SYNs were"))
			cause("high", "a client reused a 4-tuple the server still holds in TIME_WAIT, with a timestamp older than the last one seen on it: clients behind one NAT address with different timestamp clocks, or a client whose clock went back",
				"whether the failing clients share a NAT address; net.ipv4.tcp_timestamps on the clients; tcp_tw_reuse; nstat -az TcpExtPAWSTimewait")
		}
		if t.RateDiffers {
			ev("unanswered: %s of %s SYNs with the option, %s of %s without", num(t.UnansweredWithTS), num(t.SynsOffering), num(t.UnansweredNoTS), num(t.SynsNotOffering))
			cause("medium", "SYNs are dropped depending on their timestamps: PAWS rejections (clients behind NAT with different clocks, tcp_tw_recycle-like behaviour) or a middlebox treating the option badly",
				"nstat -az TcpExtPAWSActive TcpExtPAWSEstab TcpExtPAWSOld on the server; whether the failing clients share a NAT address")
		}
	}
	out.Kernel = newIncidentKernel(inc.Kernel)
	if k := out.Kernel; k != nil && inc.Kind != analyze.IncTimestamps {
		// What the kernel saw outranks what the wire suggests: once a
		// finding accounts, with high confidence, for every attempt of the
		// incident, the guesses from the wire become the unlikely ones.
		for _, f := range k.Findings {
			if f.Confidence == "high" && f.Attempts >= inc.Attempts && f.Cause != "kernel_resets" {
				for i := range out.Causes {
					out.Causes[i].Confidence = "low"
				}
				break
			}
		}
	}
	out.Causes = append(kernelCauses(out.Kernel), out.Causes...)
	return out
}

func sides(m map[string]uint64) string {
	var p []string
	for _, s := range []string{"client", "server"} {
		if n := m[s]; n > 0 {
			p = append(p, "by the "+s+" "+num(n))
		}
	}
	return strings.Join(p, ", ")
}

func phases(m map[string]uint64) string {
	var p []string
	for _, s := range []string{"before_data", "after_request", "after_response"} {
		if n := m[s]; n > 0 {
			p = append(p, strings.ReplaceAll(s, "_", " ")+" "+num(n))
		}
	}
	if len(p) == 0 {
		return "unknown"
	}
	return strings.Join(p, ", ")
}

// spoofedFlood reports whether an unanswered-SYN incident has the shape of
// a SYN flood from forged source addresses: many attempts (floodMin or
// more), nearly each from a client address of its own (Clients is an
// estimate, within a few percent), and no SYN retransmitted. Real clients
// that get no answer retransmit, and come back from the same addresses.
func spoofedFlood(inc *analyze.Incident) bool {
	const floodMin = 1000
	return inc.Attempts >= floodMin && float64(inc.Clients) >= 0.9*float64(inc.Attempts) && len(inc.Schedule) <= 1
}
