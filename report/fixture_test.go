package report

// A hand-made report for the renderer tests: a two-minute capture at a
// load balancer with five incidents of different kinds, sample attempts with
// packet timelines, a 120-bucket series and both histograms. It does not
// depend on the analyser, so the renderers can be tested on their own.

import (
	"time"
)

var fixtureBase = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// fixtureTime is the capture start plus off.
func fixtureTime(off time.Duration) string { return TimeString(fixtureBase.Add(off).UnixNano()) }

func f64(v float64) *float64 { return &v }

// fixtureEvent is a timeline packet; times are offsets from the attempt start.
func fixtureEvent(start time.Duration, offMs float64, dir, flags string, seq, ack, length uint32, note string) Event {
	return Event{
		Time:     fixtureTime(start + time.Duration(offMs*float64(time.Millisecond))),
		OffsetMs: offMs, Dir: dir, Flags: flags, Seq: seq, Ack: ack, Len: length, Win: 64240, Note: note,
	}
}

func fixtureAttempt(id uint64, client, server string, start time.Duration, outcome string, events ...Event) Attempt {
	a := Attempt{
		ID: id, Client: client, Server: server, Start: fixtureTime(start), Outcome: outcome,
		Close: "none", ClosedBy: "none", ClosePhase: "none", ConnState: "S0", History: "S", Timeline: events,
	}
	if len(events) > 0 {
		a.ISN = events[0].Seq
		last := events[len(events)-1]
		a.End = last.Time
	} else {
		a.End = a.Start
	}
	for _, e := range events {
		switch {
		case e.Dir == "client" && e.Flags == "S":
			a.Syns++
			a.SynOffsetsMs = append(a.SynOffsetsMs, e.OffsetMs)
		case e.Dir == "server" && e.Flags == "S.":
			a.Synacks++
		}
	}
	return a
}

// fixtureReport returns a fresh, realistic report (callers may modify it).
func fixtureReport() *Report {
	const srv = "10.1.2.3:443"
	s := func(sec float64) time.Duration { return time.Duration(sec * float64(time.Second)) }

	unanswered1 := fixtureAttempt(412, "198.51.100.23:51844", srv, s(41.2), "unanswered",
		fixtureEvent(s(41.2), 0, "client", "S", 1804289383, 0, 0, "SYN"),
		fixtureEvent(s(41.2), 1000, "client", "S", 1804289383, 0, 0, "SYN retransmission"),
		fixtureEvent(s(41.2), 3000, "client", "S", 1804289383, 0, 0, "SYN retransmission"),
	)
	unanswered2 := fixtureAttempt(431, "203.0.113.77:40112", srv, s(44.9), "unanswered",
		fixtureEvent(s(44.9), 0, "client", "S", 846930886, 0, 0, "SYN"),
		fixtureEvent(s(44.9), 1000, "client", "S", 846930886, 0, 0, "SYN retransmission"),
		fixtureEvent(s(44.9), 3000, "client", "S", 846930886, 0, 0, "SYN retransmission"),
		fixtureEvent(s(44.9), 7000, "client", "S", 846930886, 0, 0, "SYN retransmission"),
	)
	late := fixtureAttempt(398, "198.51.100.61:33210", srv, s(39.5), "answered_after_retransmit",
		fixtureEvent(s(39.5), 0, "client", "S", 1681692777, 0, 0, "SYN"),
		fixtureEvent(s(39.5), 1000, "client", "S", 1681692777, 0, 0, "SYN retransmission"),
		fixtureEvent(s(39.5), 1000.412, "server", "S.", 1714636915, 1681692778, 0, "SYN-ACK"),
		fixtureEvent(s(39.5), 1000.833, "client", ".", 1681692778, 1714636916, 0, "handshake ACK"),
		fixtureEvent(s(39.5), 1001.020, "client", "P.", 1681692778, 1714636916, 517, "first data"),
		fixtureEvent(s(39.5), 1003.870, "server", "P.", 1714636916, 1681693295, 1448, "first data"),
	)
	late.RetransmitDelayMs, late.HandshakeRTTMs, late.TTFBMs = f64(1000), f64(0.833), f64(2.85)
	late.AnsweredSyn = new(int)
	*late.AnsweredSyn = 1
	reset := fixtureAttempt(655, "198.51.100.9:48000", "10.1.2.4:8443", s(66.0), "established",
		fixtureEvent(s(66.0), 0, "client", "S", 1957747793, 0, 0, "SYN"),
		fixtureEvent(s(66.0), 0.35, "server", "S.", 424238335, 1957747794, 0, "SYN-ACK"),
		fixtureEvent(s(66.0), 0.71, "client", ".", 1957747794, 424238336, 0, "handshake ACK"),
		fixtureEvent(s(66.0), 0.90, "client", "P.", 1957747794, 424238336, 233, "first data"),
		fixtureEvent(s(66.0), 30012.5, "server", "R.", 424238336, 1957748027, 0, "RST"),
	)
	reset.Close, reset.ClosedBy, reset.ClosePhase = "rst", "server", "after_request"
	reset.HandshakeRTTMs = f64(0.71)
	icmp := fixtureAttempt(702, "203.0.113.5:39001", "10.1.9.9:5432", s(70.4), "refused",
		fixtureEvent(s(70.4), 0, "client", "S", 719885386, 0, 0, "SYN"),
		fixtureEvent(s(70.4), 0.52, "server", "icmp 3/13", 719885386, 0, 0, "ICMP unreachable"),
	)
	icmp.RefusedBy = "icmp"
	icmp.ICMP = &ICMP{Type: 3, Code: 13, From: "10.1.0.1"}
	probe := fixtureAttempt(5, "10.0.0.5:40001", "10.1.2.3:80", s(2), "established",
		fixtureEvent(s(2), 0, "client", "S", 596516649, 0, 0, "SYN"),
		fixtureEvent(s(2), 0.04, "server", "S.", 1189641421, 596516650, 0, "SYN-ACK"),
		fixtureEvent(s(2), 0.31, "client", ".", 596516650, 1189641422, 0, "handshake ACK"),
		fixtureEvent(s(2), 0.33, "client", "R.", 596516650, 1189641422, 0, "RST"),
	)
	probe.Close, probe.ClosedBy, probe.ClosePhase = "rst", "client", "before_data"

	// A 120-bucket series: steady traffic, a burst of lost SYNs around
	// 10:00:40 and scattered resets.
	const n = 120
	series := &Series{BucketS: 1, Start: fixtureTime(0)}
	for i := 0; i < n; i++ {
		var un, rtx, srtx, rst uint64
		if i >= 40 && i <= 52 {
			un = uint64(2 + i%3)
			rtx = 2 * un
		}
		if i >= 36 && i <= 65 {
			rtx += uint64(1 + i%2)
		}
		if i%30 == 7 {
			srtx = 1
		}
		if i%17 == 3 || (i >= 64 && i <= 70) {
			rst = 1 + uint64(i%2)
		}
		series.Attempts = append(series.Attempts, uint64(12+(i*7)%9)+un)
		series.Unanswered = append(series.Unanswered, un)
		series.SynRetransmits = append(series.SynRetransmits, rtx)
		series.SynackRetransmits = append(series.SynackRetransmits, srtx)
		series.Resets = append(series.Resets, rst)
	}
	bounds := []float64{0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000}

	return &Report{
		Schema:    Schema,
		Generator: "synscope test",
		Sources: []Source{{
			Path: "captures/edge-lb-2026-03-01.pcapng", Format: "pcapng", LinkTypes: []string{"EN10MB"},
			Packets: 48213, Bytes: 31250112, First: fixtureTime(0), Last: fixtureTime(s(119.8)),
			Anomalies: 1, FirstAnomaly: "record 48214: truncated block (12 of 96 bytes)",
		}},
		Summary: Summary{
			Packets: 48213, TCPPackets: 48001, Attempts: 1843, SynPackets: 2010, SynRetransmits: 167,
			SynackPackets: 1790, SynackRetransmits: 4, Duplicates: 12, NonTCP: 212,
			Outcomes:             Outcomes{Established: 1690, AnsweredAfterRetransmit: 52, Unanswered: 37, Refused: 4, Abandoned: 2, Undetermined: 3, Partial: 55},
			ResetsAfterHandshake: BySide{ByClient: 30, ByServer: 7},
			Timestamps:           TSCounts{SynWithTS: 2010, SynackWithTS: 1790},
			First:                fixtureTime(0), Last: fixtureTime(s(119.8)), DurationS: 119.8,
		},
		Settings: Settings{SynTimeoutS: 3, HandshakeIdleS: 130, EstablishedIdleS: 3600, MaxFlows: 262144, MaxListed: 1000, IncidentGapS: 60, SlowS: 5},
		Verdict: Verdict{Rows: []VerdictRow{
			{Category: "lost_in_handshake", Meaning: "SYNs never answered: dropped on the way to the server, by its firewall or kernel, or the SYN-ACK lost on the way back", Attempts: 37, Share: 0.0201, Incidents: []int{1}},
			{Category: "answered_late", Meaning: "answered only after SYN retransmits: the first SYN(s) were lost or dropped (each retransmit adds 1 s or more)", Attempts: 52, Share: 0.0282, Incidents: []int{2}},
			{Category: "refused", Meaning: "refused by a RST (nothing listening, or a reject rule) or an ICMP unreachable", Attempts: 4, Share: 0.0022, Incidents: []int{4}},
			{Category: "abandoned", Meaning: "the server answered but the client never completed the handshake", Attempts: 2, Share: 0.0011, Incidents: []int{}},
			{Category: "reset", Meaning: "connections reset after the handshake (health checks excluded)", Attempts: 7, Share: 0.0038, Incidents: []int{3}},
			{Category: "slow_application", Meaning: "handshake fine, first response byte late: the application, not the network", Attempts: 0, Share: 0, Incidents: []int{}},
			{Category: "healthcheck_rst", Meaning: "periodic probes that close with RST instead of FIN: notable, not a fault", Attempts: 24, Share: 0.013, Incidents: []int{5}},
		}},
		Incidents: []Incident{
			{
				ID: 1, Kind: "unanswered_syn", Severity: "critical", Server: srv,
				Title: "37 connection attempts to 10.1.2.3:443 got no answer at all (9% of the attempts to it), from 29 clients, 2026-03-01 10:00:40–10:00:52 UTC",
				Start: fixtureTime(s(40.1)), End: fixtureTime(s(52.9)), Attempts: 37, Clients: 29, ServerAttempts: 412, Share: 0.0898,
				Schedule: "0, 1, 3, 7 s",
				Samples:  []Attempt{unanswered1, unanswered2}, SamplesOmitted: 35,
				Evidence: []string{
					"37 of 412 attempts to 10.1.2.3:443 in this window got neither SYN-ACK, RST nor ICMP error",
					"clients kept retransmitting their SYN: at 0, 1, 3, 7 s after the first (their kernels' retry schedule)",
					"29 clients affected",
				},
				Causes: []Cause{
					{Cause: "SYNs dropped intermittently before the listening socket: a firewall rate limit, SYN-flood protection, a full conntrack table, or a load balancer dropping new flows", Confidence: "medium",
						Evidence: []string{"only 9% of attempts failed while others to the same port succeeded"},
						Check:    "on the server: nft list ruleset / iptables -L -v -n counters, conntrack -S (insert_failed, drop), dmesg for 'nf_conntrack: table full'"},
					{Cause: "the listen or accept queue overflowed (the application did not accept() fast enough); the kernel then drops SYNs silently", Confidence: "medium",
						Check: "nstat -az TcpExtListenOverflows TcpExtListenDrops TcpExtTCPReqQFullDrop before and after; ss -ltn (Recv-Q against the backlog)"},
					{Cause: "the SYN-ACKs were sent but lost on the way back (asymmetric routing, a stateful device on the return path)", Confidence: "low",
						Check: "capture on the server itself: if SYN-ACKs leave it, the loss is on the return path"},
				},
			},
			{
				ID: 2, Kind: "syn_retransmit", Severity: "warning", Server: srv,
				Title: "52 connections to 10.1.2.3:443 succeeded only after the client retransmitted its SYN (connect delayed by 1 s median, 3 s max), 2026-03-01 10:00:36–10:01:05 UTC",
				Start: fixtureTime(s(36.2)), End: fixtureTime(s(65.7)), Attempts: 52, Clients: 44, ServerAttempts: 930, Share: 0.0559,
				DelayP50Ms: f64(1000), DelayMaxMs: f64(3000.4),
				Samples:  []Attempt{late},
				Evidence: []string{"the first SYN of each of these 52 attempts got no answer; a retransmitted one did", "added connect delay: median 1.0 s, maximum 3.0 s"},
				Causes: []Cause{
					{Cause: "SYNs dropped intermittently: firewall or load balancer rate limits, SYN-flood protection, conntrack pressure", Confidence: "medium",
						Check: "nstat -az TcpExtListenDrops TcpExtListenOverflows; firewall counters; conntrack -S"},
				},
			},
			{
				ID: 3, Kind: "reset", Severity: "warning", Server: "10.1.2.4:8443",
				Title: "7 connections to 10.1.2.4:8443 reset after the handshake (by the client 1, by the server 6), 2026-03-01 10:01:04–10:01:40 UTC",
				Start: fixtureTime(s(64.0)), End: fixtureTime(s(100.3)), Attempts: 7, Clients: 5, ServerAttempts: 88, Share: 0.0795,
				BySide:   map[string]uint64{"server": 6, "client": 1},
				ByPhase:  map[string]uint64{"after_request": 5, "before_data": 2},
				Samples:  []Attempt{reset},
				Evidence: []string{"first RST after the handshake: by the client 1, by the server 6", "phase: before data 2, after request 5"},
				Causes: []Cause{
					{Cause: "the server side aborted connections (application crash or exception, a proxy or load balancer timeout)", Confidence: "high",
						Check: "application and proxy logs at these times"},
					{Cause: "clients aborted (their own timeouts, cancelled requests)", Confidence: "medium", Check: "client timeouts against the server's response time"},
				},
			},
			{
				ID: 4, Kind: "refused", Severity: "warning", Server: "10.1.9.9:5432",
				Title: "4 connections to 10.1.9.9:5432 refused, 2026-03-01 10:01:10–10:01:12 UTC",
				Start: fixtureTime(s(70.4)), End: fixtureTime(s(72.1)), Attempts: 4, Clients: 2, ServerAttempts: 4, Share: 1,
				BySide:   map[string]uint64{"icmp": 4},
				Samples:  []Attempt{icmp},
				Evidence: []string{"4 SYNs were answered with ICMP destination unreachable (type 3 code 13) from 10.1.0.1"},
				Causes: []Cause{{Cause: "10.1.0.1 rejected the connection with ICMP (a firewall reject rule, no route, or an administrative prohibition)", Confidence: "high",
					Check: "the rules of the device that sent the ICMP error; routing toward the server"}},
			},
			{
				ID: 5, Kind: "healthcheck_rst", Severity: "notable", Server: "10.1.2.3:80",
				Title: "10.0.0.5 probes 10.1.2.3:80 every 5 s (±1.2 ms) and closes each probe with RST instead of FIN: a health checker, not a fault",
				Start: fixtureTime(s(2)), End: fixtureTime(s(117)), Attempts: 24, Clients: 1, ServerAttempts: 301, Share: 0.0797,
				Prober: "10.0.0.5", IntervalS: f64(5), JitterMs: f64(1.2),
				Samples:  []Attempt{probe},
				Evidence: []string{"24 short connections from 10.0.0.5, started every 5 s (median; jitter 1.2 ms)"},
				Causes: []Cause{{Cause: "a load balancer or monitoring health check that closes with SO_LINGER 0 (RST)", Confidence: "high",
					Check: "the health-check settings of the device or monitor at 10.0.0.5"}},
			},
		},
		Series: series,
		Distributions: &Distributions{
			HandshakeRTT: Histogram{Bounds: bounds, Counts: []uint64{0, 3, 41, 388, 902, 233, 61, 19, 8, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0}, Count: 1656,
				P50Ms: f64(1.41), P90Ms: f64(4.2), P99Ms: f64(16.8)},
			TTFB: Histogram{Bounds: bounds, Counts: []uint64{0, 0, 12, 150, 402, 611, 280, 96, 44, 12, 5, 2, 1, 0, 3, 1, 0, 0, 0}, Count: 1619,
				P50Ms: f64(4.3), P90Ms: f64(13.2), P99Ms: f64(48.5)},
		},
		Attempts: []Attempt{probe, late, unanswered1, unanswered2, reset, icmp},
		Listing:  "anomalous",
	}
}

// hostileReport is the fixture with markup and table pipes in fields that
// come from the capture or its file name.
func hostileReport() *Report {
	r := fixtureReport()
	const evil = "<script>alert(1)</script>"
	r.Sources[0].Path = "captures/a|b " + evil + ".pcapng"
	r.Incidents[0].Server = evil + "a|b"
	r.Incidents[0].Title = "title a|b " + evil + " *bold* [link](x) `code`"
	r.Incidents[0].Evidence = append(r.Incidents[0].Evidence, "- starts like a list "+evil)
	r.Incidents[0].Samples[0].Server = "a|b" + evil
	r.Incidents[0].Samples[0].Timeline[0].Note = "note a|b " + evil
	r.Verdict.Rows[0].Meaning = "meaning a|b " + evil
	r.Incidents[1].Kind = evil
	r.Incidents[1].Causes[0].Confidence = `high" onmouseover="alert(1)`
	r.Attempts[0].Client = evil
	r.Filter = "port 443 " + evil
	return r
}
