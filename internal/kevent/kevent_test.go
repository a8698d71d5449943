package kevent

import (
	"net/netip"
	"testing"
)

func TestEventRoundTrip(t *testing.T) {
	for _, e := range []Event{
		{Kind: KindDrop, Time: 1700000000123456789, Netns: 4026531840,
			Src: netip.MustParseAddrPort("10.0.0.1:40000"), Dst: netip.MustParseAddrPort("10.0.0.2:80"),
			Flags: 0x02, Seq: 123456, Reason: 6, ReasonName: "NETFILTER_DROP", Location: "nft_do_chain+0x2c4"},
		{Kind: KindRecvReset, Time: 1, Src: netip.MustParseAddrPort("[2001:db8::1]:443"),
			Dst: netip.MustParseAddrPort("[2001:db8::2]:5555"), State: 1},
	} {
		b := AppendEvent(nil, &e)
		var got Event
		if err := ParseEvent(b, &got); err != nil {
			t.Fatal(err)
		}
		if got != e {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, e)
		}
		for n := 0; n < len(b); n++ {
			if err := ParseEvent(b[:n], &got); err == nil {
				t.Errorf("%d of %d bytes parsed without error", n, len(b))
			}
		}
	}
}

func TestSampleRoundTrip(t *testing.T) {
	s := Sample{Time: 5, Netns: 7, Counters: map[string]uint64{"TcpExt.ListenOverflows": 3},
		Sysctls: map[string]string{"net.ipv4.tcp_syncookies": "1"}, ConntrackCount: -1, ConntrackMax: -1,
		Listeners: []Listener{{Addr: netip.MustParseAddrPort("0.0.0.0:80"), Backlog: 1, Queue: 2}}}
	b, err := AppendJSON(nil, KindCounters, &s)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := RecordKind(b); err != nil || k != KindCounters {
		t.Fatalf("kind %v %v", k, err)
	}
	var got Sample
	if err := ParseJSON(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Counters["TcpExt.ListenOverflows"] != 3 || got.Listeners[0] != s.Listeners[0] || got.Sysctls["net.ipv4.tcp_syncookies"] != "1" {
		t.Errorf("got %+v", got)
	}
	if Is([]byte("SYNX\x01\x01")) {
		t.Error("wrong magic accepted")
	}
}
