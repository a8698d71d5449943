package analyze

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/synscope/synscope/internal/kevent"
)

var (
	kcli = netip.MustParseAddrPort("192.0.2.1:40000")
	ksrv = netip.MustParseAddrPort("198.51.100.2:443")
)

func kbase(ms int64) int64 {
	return time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).UnixNano() + ms*int64(time.Millisecond)
}

func kdrop(ms int64, seq uint32, reason string) Packet {
	e := kevent.Event{Kind: kevent.KindDrop, Time: kbase(ms), Src: kcli, Dst: ksrv, Flags: FlagSYN, Seq: seq,
		Reason: 6, ReasonName: reason, Location: "nft_do_chain+0x1f4"}
	b := kevent.AppendEvent(nil, &e)
	return Packet{Data: b, Time: e.Time, OrigLen: len(b), LinkType: kevent.LinkType}
}

func ksample(t testing.TB, ms int64, counters map[string]uint64, ls ...kevent.Listener) Packet {
	s := kevent.Sample{Time: kbase(ms), Counters: counters, Listeners: ls, Addrs: []netip.Addr{ksrv.Addr()},
		Sysctls: map[string]string{"net.ipv4.tcp_syncookies": "0"}}
	b, err := kevent.AppendJSON(nil, kevent.KindCounters, &s)
	if err != nil {
		t.Fatal(err)
	}
	return Packet{Data: b, Time: s.Time, OrigLen: len(b), LinkType: kevent.LinkType}
}

// runKernel analyses pkts (sorted by time) and concludes the incidents.
func runKernel(t *testing.T, pkts []Packet) (*Analyzer, []*Attempt, *Result) {
	t.Helper()
	var out []*Attempt
	incs := NewIncidents(DefaultIncidentConfig())
	an := NewAnalyzer(DefaultConfig(), nil, func(a *Attempt) bool { out = append(out, a); incs.Add(a); return true })
	pl := an.Pipeline()
	for i := range pkts {
		pl.Packet(&pkts[i])
	}
	pl.Close()
	an.Finish()
	res := incs.Finish(an.Summary())
	an.Kernel().Conclude(res)
	return an, out, res
}

func sortByTime(ps []Packet) []Packet {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j].Time < ps[j-1].Time; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
	return ps
}

func findIncident(res *Result, k IncidentKind) *Incident {
	for _, inc := range res.Incidents {
		if inc.Kind == k {
			return inc
		}
	}
	return nil
}

func TestKernelDropJoinsUnansweredSYN(t *testing.T) {
	c := &conv{t: t}
	c.add(0, true, FlagSYN, 1000, 0, 0).add(1000, true, FlagSYN, 1000, 0, 0).add(3000, true, FlagSYN, 1000, 0, 0)
	pkts := append(c.pkts, ksample(t, -100, map[string]uint64{"TcpExt.ListenOverflows": 5}),
		kdrop(0, 1000, "NETFILTER_DROP"), kdrop(1000, 1000, "NETFILTER_DROP"), kdrop(3000, 1000, "NETFILTER_DROP"),
		kdrop(3000, 777, "NETFILTER_DROP"), // another sequence space: not this attempt's
		ksample(t, 10000, map[string]uint64{"TcpExt.ListenOverflows": 5}))
	an, atts, res := runKernel(t, sortByTime(pkts))
	if len(atts) != 1 || atts[0].Outcome != OutcomeUnanswered {
		t.Fatalf("attempts %v", atts)
	}
	k := atts[0].Kernel
	if !k.Watched || k.SynDrops != 3 || k.DropReason != "NETFILTER_DROP" || k.DropLocation != "nft_do_chain+0x1f4" {
		t.Errorf("attempt kernel %+v", k)
	}
	if s := an.Summary(); s.Packets != 3 {
		t.Errorf("kernel records counted as packets: %d", s.Packets)
	}
	tot := an.Kernel().Totals()
	if tot.Events != 4 || tot.Matched != 3 || tot.Unmatched != 1 || len(tot.Drops) != 1 || tot.Drops[0].Count != 4 {
		t.Errorf("totals %+v", tot)
	}
	inc := findIncident(res, IncUnansweredSYN)
	if inc == nil || inc.Kernel == nil || len(inc.Kernel.Findings) == 0 {
		t.Fatalf("no kernel findings: %+v", inc)
	}
	f := inc.Kernel.Findings[0]
	if f.Cause != "kernel_drop" || f.Confidence != "high" || !strings.Contains(f.Text, "NETFILTER_DROP (nft_do_chain+0x1f4)") || f.Attempts != 1 {
		t.Errorf("finding %+v", f)
	}
	if inc.Kernel.Local != "server" {
		t.Errorf("local end %q", inc.Kernel.Local)
	}
}

func TestKernelAcceptQueueOverflow(t *testing.T) {
	c := &conv{t: t}
	c.add(0, true, FlagSYN, 1000, 0, 0).add(1000, true, FlagSYN, 1000, 0, 0)
	l := kevent.Listener{Addr: netip.MustParseAddrPort("0.0.0.0:443"), Backlog: 1}
	full := l
	full.Queue = 2
	pkts := append(c.pkts, ksample(t, -100, map[string]uint64{"TcpExt.ListenOverflows": 5, "TcpExt.ListenDrops": 5}, l),
		ksample(t, 500, map[string]uint64{"TcpExt.ListenOverflows": 6, "TcpExt.ListenDrops": 6}, full),
		ksample(t, 10000, map[string]uint64{"TcpExt.ListenOverflows": 7, "TcpExt.ListenDrops": 7}, full))
	_, _, res := runKernel(t, sortByTime(pkts))
	inc := findIncident(res, IncUnansweredSYN)
	if inc == nil || inc.Kernel == nil || len(inc.Kernel.Findings) == 0 {
		t.Fatalf("no kernel findings: %+v", inc)
	}
	f := inc.Kernel.Findings[0]
	if f.Cause != "accept_queue_overflow" || f.Confidence != "high" || !strings.Contains(f.Text, "0.0.0.0:443 (backlog 1, 2 waiting") {
		t.Errorf("finding %+v", f)
	}
	if !strings.Contains(strings.Join(f.Evidence, "\n"), "ListenOverflows +2") {
		t.Errorf("evidence %q", f.Evidence)
	}
}

func TestKernelNothingMoved(t *testing.T) {
	c := &conv{t: t}
	c.add(0, true, FlagSYN, 1000, 0, 0)
	pkts := append(c.pkts, ksample(t, -100, map[string]uint64{"TcpExt.ListenOverflows": 5}),
		ksample(t, 10000, map[string]uint64{"TcpExt.ListenOverflows": 5}))
	_, _, res := runKernel(t, sortByTime(pkts))
	inc := findIncident(res, IncUnansweredSYN)
	if inc == nil || inc.Kernel == nil || len(inc.Kernel.Findings) != 1 || inc.Kernel.Findings[0].Cause != "no_kernel_drop" {
		t.Fatalf("findings %+v", inc.Kernel)
	}
}

func TestKernelPAWSRaisesTimestampsFinding(t *testing.T) {
	c := &conv{t: t}
	c.add(0, true, FlagSYN, 1000, 0, 0)
	pkts := append(c.pkts, ksample(t, -100, nil), kdrop(0, 1000, "TCP_RFC7323_TW_PAWS"), ksample(t, 10000, nil))
	_, _, res := runKernel(t, sortByTime(pkts))
	inc := findIncident(res, IncUnansweredSYN)
	if inc == nil || inc.Kernel == nil || len(inc.Kernel.Findings) == 0 || inc.Kernel.Findings[0].Cause != "paws" {
		t.Fatalf("findings %+v", inc.Kernel)
	}
	ts := findIncident(res, IncTimestamps)
	if ts == nil || ts.TS.PAWSRejects != 1 {
		t.Fatalf("timestamps finding %+v", ts)
	}
}

func TestNoKernelEvidence(t *testing.T) {
	c := &conv{t: t}
	c.add(0, true, FlagSYN, 1000, 0, 0).add(9000, false, FlagSYN|FlagACK, 5, 1001, 0)
	an, atts, res := runKernel(t, c.pkts)
	if an.Kernel().Active() || atts[0].Kernel.Watched {
		t.Error("kernel evidence from nothing")
	}
	for _, inc := range res.Incidents {
		if inc.Kernel != nil {
			t.Errorf("incident %v has kernel evidence", inc.Kind)
		}
	}
}

func TestKernelMalformedRecord(t *testing.T) {
	c := &conv{t: t}
	c.add(0, true, FlagSYN, 1000, 0, 0)
	bad := []byte("SYNK\x01\x01short")
	pkts := append(c.pkts, Packet{Data: bad, Time: kbase(1), OrigLen: len(bad), LinkType: kevent.LinkType})
	an, _, _ := runKernel(t, pkts)
	if tot := an.Kernel().Totals(); tot.Malformed != 1 || tot.Records != 1 {
		t.Errorf("totals %+v", tot)
	}
}

// kevt is a kernel event on the test 4-tuple: a drop (with reason and
// location), a SYN-ACK retransmit or a reset, of a segment from the client
// (fromClient) or the server.
func kevt(ms int64, kind kevent.Kind, fromClient bool, flags uint8, seq uint32, reason, loc string) Packet {
	e := kevent.Event{Kind: kind, Time: kbase(ms), Src: kcli, Dst: ksrv, Flags: flags, Seq: seq, ReasonName: reason, Location: loc}
	if !fromClient {
		e.Src, e.Dst = ksrv, kcli
	}
	b := kevent.AppendEvent(nil, &e)
	return Packet{Data: b, Time: e.Time, OrigLen: len(b), LinkType: kevent.LinkType}
}

func causes(fs []KernelFinding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Cause)
	}
	return out
}

// The lab's accept-queue overflow with a round-trip time: the SYN is
// answered, the client's ACK finds the queue full and is dropped with
// TCP_LISTEN_OVERFLOW, the server retransmits its SYN-ACK. That is one
// accept_queue_overflow finding (not a generic kernel_drop), and the SYN-ACK
// retransmits are put down to the kernel's own drop, not to the path.
func TestKernelAcceptQueueOverflowACK(t *testing.T) {
	c := &conv{t: t}
	c.add(0, true, FlagSYN, 1000, 0, 0).add(1, false, FlagSYN|FlagACK, 5000, 1001, 0).add(2, true, FlagACK, 1001, 5001, 0).
		add(1001, false, FlagSYN|FlagACK, 5000, 1001, 0).add(1002, true, FlagACK, 1001, 5001, 0).
		add(3000, true, FlagACK|FlagFIN, 1001, 5001, 0)
	l := kevent.Listener{Addr: ksrv, Backlog: 4, Queue: 5}
	pkts := append(c.pkts, ksample(t, -100, map[string]uint64{"TcpExt.ListenOverflows": 0, "TcpExt.ListenDrops": 0}, l),
		kevt(2, kevent.KindDrop, true, FlagACK, 1001, "TCP_LISTEN_OVERFLOW", "tcp_v4_rcv+0x91"),
		kevt(1001, kevent.KindSynAckRetrans, false, FlagSYN|FlagACK, 5000, "", ""),
		kevt(1002, kevent.KindDrop, true, FlagACK, 1001, "TCP_LISTEN_OVERFLOW", "tcp_v4_rcv+0x91"),
		kevt(3000, kevent.KindDrop, true, FlagACK|FlagFIN, 1001, "TCP_LISTEN_OVERFLOW", "tcp_v4_rcv+0x91"),
		ksample(t, 10000, map[string]uint64{"TcpExt.ListenOverflows": 3, "TcpExt.ListenDrops": 3}, l))
	_, atts, res := runKernel(t, sortByTime(pkts))
	if len(atts) != 1 || atts[0].Kernel.OtherDrops != 3 || atts[0].Kernel.OtherReason != "TCP_LISTEN_OVERFLOW" || atts[0].Kernel.SynDrops != 0 {
		t.Fatalf("attempt kernel %+v", atts[0].Kernel)
	}
	inc := findIncident(res, IncSYNACKRetransmit)
	if inc == nil || inc.Kernel == nil {
		t.Fatalf("no synack_retransmit incident with kernel evidence: %+v", res.Incidents)
	}
	fs := inc.Kernel.Findings
	if got := causes(fs); strings.Join(got, ",") != "accept_queue_overflow,synack_retransmits" {
		t.Fatalf("findings %v: %+v", got, fs)
	}
	if f := fs[0]; f.Confidence != "high" || f.Attempts != 1 || !strings.Contains(f.Text, "when the clients' ACKs came") ||
		!strings.Contains(f.Text, ksrv.String()+" (backlog 4, 5 waiting") || !strings.Contains(strings.Join(f.Evidence, "\n"), "TCP_LISTEN_OVERFLOW") {
		t.Errorf("accept queue finding %+v", f)
	}
	if f := fs[1]; !strings.Contains(f.Text, "dropped the clients' ACKs itself") || strings.Contains(f.Text, "lost between") {
		t.Errorf("SYN-ACK retransmit finding %+v", f)
	}
	// The ACK drops are this attempt's only: it completed the handshake on
	// the wire, so it is counted as such.
	if ad := inc.Kernel.AckDropped; len(ad) != 1 || ad[0].Attempts != 1 {
		t.Errorf("handshake ACKs dropped %+v", ad)
	}
}

// A client whose SYN hit a TIME-WAIT with an older timestamp: the SYN's
// PAWS drop and the drop of its RST (which ends the TIME-WAIT) are two rows;
// only the SYN's explains the unanswered SYN.
func TestKernelDropRowsBySegment(t *testing.T) {
	c := &conv{t: t}
	c.add(0, true, FlagSYN, 1000, 0, 0).add(1, true, FlagRST, 777, 0, 0)
	pkts := append(c.pkts, ksample(t, -100, nil),
		kevt(0, kevent.KindDrop, true, FlagSYN, 1000, "TCP_RFC7323_TW_PAWS", "tcp_v4_rcv+0x91"),
		kevt(1, kevent.KindDrop, true, FlagRST, 777, "NOT_SPECIFIED", "tcp_v4_rcv+0x91"),
		ksample(t, 10000, nil))
	_, atts, res := runKernel(t, sortByTime(pkts))
	k := atts[0].Kernel
	if k.SynDrops != 1 || k.OtherDrops != 1 || k.DropReason != "TCP_RFC7323_TW_PAWS" || k.OtherReason != "NOT_SPECIFIED" {
		t.Fatalf("attempt kernel %+v", k)
	}
	inc := findIncident(res, IncUnansweredSYN)
	if inc == nil || len(inc.Kernel.Drops) != 2 {
		t.Fatalf("incident drops %+v", inc)
	}
	for _, r := range inc.Kernel.Drops {
		if r.Count != 1 || r.Attempts != 1 || r.SYN != (r.Reason == "TCP_RFC7323_TW_PAWS") {
			t.Errorf("drop row %+v", r)
		}
	}
	if got := causes(inc.Kernel.Findings); strings.Join(got, ",") != "paws" {
		t.Errorf("findings %v", got)
	}
	if f := inc.Kernel.Findings[0]; !strings.Contains(f.Text, "TIME-WAIT") {
		t.Errorf("paws finding %+v", f)
	}
	// The timestamps incident's kernel view is that of its samples.
	ts := findIncident(res, IncTimestamps)
	if ts == nil || ts.Kernel == nil || !ts.Kernel.FromSamples || ts.Kernel.Watched != 1 || strings.Join(causes(ts.Kernel.Findings), ",") != "paws" {
		t.Errorf("timestamps incident kernel %+v", ts)
	}
}

// A client's RST on an established connection, and the data the server
// never read freed with its socket (QUEUE_PURGE): the reset events are the
// finding, the purge is not a drop cause.
func TestKernelQueuePurgeIsNotACause(t *testing.T) {
	c := &conv{t: t}
	c.add(0, true, FlagSYN, 1000, 0, 0).add(1, false, FlagSYN|FlagACK, 5000, 1001, 0).add(2, true, FlagACK, 1001, 5001, 0).
		add(3, true, FlagACK|FlagPSH, 1001, 5001, 10).add(4, true, FlagRST|FlagACK, 1011, 5001, 0)
	pkts := append(c.pkts, ksample(t, -100, map[string]uint64{"Tcp.EstabResets": 0}),
		kevt(4, kevent.KindRecvReset, true, FlagRST|FlagACK, 1011, "", ""),
		kevt(4, kevent.KindDrop, true, FlagACK|FlagPSH, 1001, "QUEUE_PURGE", "sk_stream_kill_queues+0x57"),
		ksample(t, 10000, map[string]uint64{"Tcp.EstabResets": 1}))
	_, _, res := runKernel(t, sortByTime(pkts))
	inc := findIncident(res, IncReset)
	if inc == nil || inc.Kernel == nil {
		t.Fatalf("no reset incident: %+v", res.Incidents)
	}
	if got := causes(inc.Kernel.Findings); strings.Join(got, ",") != "kernel_resets" {
		t.Fatalf("findings %v", got)
	}
	if f := inc.Kernel.Findings[0]; f.Attempts != 1 || !strings.Contains(strings.Join(f.Evidence, "\n"), "EstabResets +1") {
		t.Errorf("reset finding %+v", f)
	}
}

// TCPReqQFullDrop counts SYNs: the SYN-queue finding claims no more
// attempts than the counter moved.
func TestKernelSynQueueOverflowBounded(t *testing.T) {
	pkts := append(synFlood(t, 5), ksample(t, -100, map[string]uint64{"TcpExt.TCPReqQFullDrop": 0}),
		ksample(t, 10000, map[string]uint64{"TcpExt.TCPReqQFullDrop": 1}))
	_, _, res := runKernel(t, sortByTime(pkts))
	inc := findIncident(res, IncUnansweredSYN)
	if inc == nil || inc.Kernel == nil {
		t.Fatalf("no incident: %+v", res.Incidents)
	}
	found := false
	for _, f := range inc.Kernel.Findings {
		if f.Cause == "syn_queue_overflow" {
			found = true
			if f.Attempts != 1 || inc.Attempts != 5 {
				t.Errorf("syn_queue_overflow claims %d of %d attempts for TCPReqQFullDrop +1", f.Attempts, inc.Attempts)
			}
		}
	}
	if !found {
		t.Errorf("no syn_queue_overflow finding: %v", causes(inc.Kernel.Findings))
	}
}
