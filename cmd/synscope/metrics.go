package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/synscope/synscope/analyze"
)

// metrics serves Prometheus metrics for a live run. Labels stay bounded:
// outcomes, sides and phases are fixed sets; server ports are the ones given
// with --port, or the first maxPortLabels seen, the rest as "other". Client
// addresses are never labels.
type metrics struct {
	reg      *prometheus.Registry
	attempts *prometheus.CounterVec
	synRetx  *prometheus.CounterVec
	sackRetx *prometheus.CounterVec
	resets   *prometheus.CounterVec
	probes   *prometheus.CounterVec
	rtt      prometheus.Histogram
	ttfb     prometheus.Histogram
	lost     atomic.Uint64

	mu      sync.Mutex
	ports   map[uint16]string
	fixed   bool
	srv     *http.Server
	srvDone chan error
}

const maxPortLabels = 20

func newMetrics(ports []uint16) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), ports: map[uint16]string{}}
	for _, p := range ports {
		m.ports[p] = strconv.Itoa(int(p))
	}
	m.fixed = len(ports) > 0
	m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "synscope_attempts_total", Help: "Connection attempts by outcome and server port."}, []string{"outcome", "port"})
	m.synRetx = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "synscope_syn_retransmits_total", Help: "SYN retransmissions by server port."}, []string{"port"})
	m.sackRetx = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "synscope_synack_retransmits_total", Help: "SYN-ACK retransmissions by server port."}, []string{"port"})
	m.resets = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "synscope_resets_total", Help: "Connections reset after the handshake, by the side that reset and the phase."}, []string{"side", "phase", "port"})
	m.probes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "synscope_short_rst_connections_total", Help: "Short, small connections the client closed with RST (what health checkers do; the report tells probers apart)."}, []string{"port"})
	buckets := []float64{.0001, .0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10, 30}
	m.rtt = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "synscope_handshake_rtt_seconds", Help: "Handshake round-trip time (SYN to the completing ACK, at the capture point).", Buckets: buckets})
	m.ttfb = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "synscope_ttfb_seconds", Help: "Time from the client's first data to the server's first data.", Buckets: buckets})
	lost := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "synscope_lost_events_total", Help: "Packets or events the capture engine, the kernel or synscope's queue could not keep."},
		func() float64 { return float64(m.lost.Load()) })
	m.reg.MustRegister(m.attempts, m.synRetx, m.sackRetx, m.resets, m.probes, m.rtt, m.ttfb, lost)
	return m
}

func (m *metrics) port(p uint16) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.ports[p]; ok {
		return l
	}
	if m.fixed || len(m.ports) >= maxPortLabels {
		return "other"
	}
	l := strconv.Itoa(int(p))
	m.ports[p] = l
	return l
}

// observe books one finished attempt.
func (m *metrics) observe(a *analyze.Attempt) {
	if m == nil {
		return
	}
	port := m.port(a.Server.Port())
	m.attempts.WithLabelValues(a.Outcome.String(), port).Inc()
	if a.Syns > 1 {
		m.synRetx.WithLabelValues(port).Add(float64(a.Syns - 1))
	}
	if a.SynAcks > 1 {
		m.sackRetx.WithLabelValues(port).Add(float64(a.SynAcks - 1))
	}
	if s := a.ResetAfterHandshake(); s != analyze.SideNone {
		m.resets.WithLabelValues(s.String(), a.ClosePhase.String(), port).Inc()
		if s == analyze.SideClient && a.End-a.Start < int64(analyze.ProbeMaxDuration) && a.BytesClient < analyze.ProbeMaxClientBytes {
			m.probes.WithLabelValues(port).Inc()
		}
	}
	if s, c, ok := a.HandshakeRTT(); ok {
		m.rtt.Observe((s + c).Seconds())
	}
	if d, ok := a.TTFB(); ok {
		m.ttfb.Observe(d.Seconds())
	}
}

// serve starts the HTTP endpoint on addr (/metrics).
func (m *metrics) serve(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	m.srvDone = make(chan error, 1)
	go func() { m.srvDone <- m.srv.Serve(ln) }()
	return nil
}

func (m *metrics) close() {
	if m == nil || m.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = m.srv.Shutdown(ctx)
	<-m.srvDone
}

// kernelCollector exposes the kernel evidence of the run at each scrape:
// drops by reason (a bounded set: the kernel's enum, at most 16 rows, the
// rest as "other"), SYN-ACK retransmits and resets the kernel made or got.
type kernelCollector struct {
	k                      *analyze.Kernel
	drops, synack, resets  *prometheus.Desc
	events, unmatched, bad *prometheus.Desc
}

// watchKernel adds the kernel evidence metrics.
func (m *metrics) watchKernel(k *analyze.Kernel) {
	if m == nil {
		return
	}
	m.reg.MustRegister(&kernelCollector{k: k,
		drops:     prometheus.NewDesc("synscope_kernel_drops_total", "TCP segments the watched namespace's kernel dropped (skb:kfree_skb), by drop reason.", []string{"reason"}, nil),
		synack:    prometheus.NewDesc("synscope_kernel_synack_retransmits_total", "SYN-ACK retransmits the kernel made (tcp:tcp_retransmit_synack).", nil, nil),
		resets:    prometheus.NewDesc("synscope_kernel_resets_total", "Resets the kernel sent or received (tcp:tcp_send_reset, tcp:tcp_receive_reset).", []string{"direction"}, nil),
		events:    prometheus.NewDesc("synscope_kernel_events_total", "Kernel tracepoint events read.", nil, nil),
		unmatched: prometheus.NewDesc("synscope_kernel_events_unmatched_total", "Kernel events no captured attempt claimed, or forgotten when the store was full.", nil, nil),
		bad:       prometheus.NewDesc("synscope_kernel_records_malformed_total", "Kernel records that could not be decoded.", nil, nil),
	})
}

func (c *kernelCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.drops, c.synack, c.resets, c.events, c.unmatched, c.bad} {
		ch <- d
	}
}

func (c *kernelCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.k.Totals()
	by := map[string]uint64{}
	for _, r := range t.Drops {
		by[r.Reason] += r.Count
	}
	if t.DropsOther > 0 {
		by["other"] += t.DropsOther
	}
	for r, n := range by {
		ch <- prometheus.MustNewConstMetric(c.drops, prometheus.CounterValue, float64(n), r)
	}
	ch <- prometheus.MustNewConstMetric(c.synack, prometheus.CounterValue, float64(t.SynAckRetransmits))
	ch <- prometheus.MustNewConstMetric(c.resets, prometheus.CounterValue, float64(t.ResetsSent), "sent")
	ch <- prometheus.MustNewConstMetric(c.resets, prometheus.CounterValue, float64(t.ResetsReceived), "received")
	ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(t.Events))
	ch <- prometheus.MustNewConstMetric(c.unmatched, prometheus.CounterValue, float64(t.Unmatched+t.Evicted))
	ch <- prometheus.MustNewConstMetric(c.bad, prometheus.CounterValue, float64(t.Malformed))
}
