package analyze

import (
	"net/netip"
	"testing"

	"github.com/synscope/synscope/internal/kevent"
)

// FuzzKernel feeds arbitrary kernel evidence records (as a stranger's pcapng
// custom blocks would bring them) beside a SYN that goes unanswered: no
// panic, the records are counted, and the report-side conclusions run.
func FuzzKernel(f *testing.F) {
	ev := kevent.Event{Kind: kevent.KindDrop, Time: kbase(0), Src: netip.MustParseAddrPort("192.0.2.1:40000"),
		Dst: netip.MustParseAddrPort("198.51.100.2:443"), Flags: FlagSYN, Seq: 1000, ReasonName: "NETFILTER_DROP", Location: "nft_do_chain+0x1"}
	f.Add(kevent.AppendEvent(nil, &ev))
	s, _ := kevent.AppendJSON(nil, kevent.KindCounters, &kevent.Sample{Time: kbase(-1), Counters: map[string]uint64{"TcpExt.ListenOverflows": 1},
		Listeners: []kevent.Listener{{Addr: netip.MustParseAddrPort("0.0.0.0:443"), Backlog: 1, Queue: 2}}})
	f.Add(s)
	n, _ := kevent.AppendJSON(nil, kevent.KindNote, &kevent.Note{Source: "tracepoints", Message: "x"})
	f.Add(n)
	f.Add([]byte("SYNK\x01\x05{\"counters\":{\"a\":1},\"listeners\":[{},{},{}]}"))
	f.Fuzz(func(t *testing.T, rec []byte) {
		c := &conv{t: t}
		c.add(0, true, FlagSYN, 1000, 0, 0).add(1000, true, FlagSYN, 1000, 0, 0)
		pkts := []Packet{c.pkts[0], {Data: rec, Time: kbase(500), OrigLen: len(rec), LinkType: kevent.LinkType}, c.pkts[1],
			{Data: rec, Time: kbase(20000), OrigLen: len(rec), LinkType: kevent.LinkType}}
		an, atts, res := runKernel(t, pkts)
		tot := an.Kernel().Totals()
		if kevent.Is(rec) && tot.Records != 2 {
			t.Fatalf("%d kernel records counted, want 2", tot.Records)
		}
		if tot.Matched > tot.Events {
			t.Fatalf("matched %d of %d events", tot.Matched, tot.Events)
		}
		if len(atts) != 1 || (kevent.Is(rec) && an.Summary().Packets != 2) {
			t.Fatalf("%d attempts, %d packets", len(atts), an.Summary().Packets)
		}
		_ = res
	})
}
