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
