package main

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/synscope/synscope/analyze"
	"github.com/synscope/synscope/internal/kevent"
)

// The kernel evidence metrics: drops by reason (bounded by the kernel's
// enum), SYN-ACK retransmits and resets, read from the analysis at scrape.
func TestKernelMetrics(t *testing.T) {
	an := analyze.NewAnalyzer(analyze.DefaultConfig(), nil, nil)
	add := func(e kevent.Event) {
		b := kevent.AppendEvent(nil, &e)
		an.Packet(&analyze.Packet{Data: b, Time: e.Time, OrigLen: len(b), LinkType: kevent.LinkType})
	}
	src, dst := netip.MustParseAddrPort("192.0.2.1:40000"), netip.MustParseAddrPort("192.0.2.2:80")
	for i := range 3 {
		add(kevent.Event{Kind: kevent.KindDrop, Time: int64(1e18) + int64(i), Src: src, Dst: dst, Flags: 2, ReasonName: "NETFILTER_DROP", Location: "nft_do_chain+0x3e8"})
	}
	add(kevent.Event{Kind: kevent.KindDrop, Time: 1e18 + 5, Src: src, Dst: dst, ReasonName: "TCP_RFC7323_TW_PAWS"})
	add(kevent.Event{Kind: kevent.KindSynAckRetrans, Time: 1e18 + 6, Src: dst, Dst: src})
	add(kevent.Event{Kind: kevent.KindRecvReset, Time: 1e18 + 7, Src: src, Dst: dst})
	m := newMetrics(nil)
	m.watchKernel(an.Kernel())
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "synscope_kernel_") {
			continue
		}
		for _, mt := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range mt.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			got[key] = mt.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"synscope_kernel_drops_total{reason=NETFILTER_DROP}":      3,
		"synscope_kernel_drops_total{reason=TCP_RFC7323_TW_PAWS}": 1,
		"synscope_kernel_resets_total{direction=received}":        1,
		"synscope_kernel_resets_total{direction=sent}":            0,
		"synscope_kernel_synack_retransmits_total":                1,
		"synscope_kernel_events_total":                            6,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}
