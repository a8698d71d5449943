package report

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/synscope/synscope/analyze"
	"github.com/synscope/synscope/internal/kevent"
)

// Kernel evidence in the report: what the watched host's kernel said during
// the capture (a live run collects it; `live --write` keeps it for a later
// read). Kernel is the run-wide view; IncidentKernel sits under each
// incident, AttemptKernel under each attempt.

// Kernel is the run-wide kernel evidence.
type Kernel struct {
	// Collected says whether any kernel evidence was read; Missing says
	// what could not be collected and why.
	Collected bool     `json:"collected"`
	Missing   []string `json:"missing,omitempty"`
	Netns     []uint32 `json:"netns,omitempty"`
	// Events are tracepoint hits: drops, SYN-ACK retransmits, resets.
	Events            uint64        `json:"events"`
	Drops             []ReasonCount `json:"drops"`
	DropsOther        uint64        `json:"drops_other,omitempty"`
	SynackRetransmits uint64        `json:"synack_retransmits"`
	ResetsSent        uint64        `json:"resets_sent"`
	ResetsReceived    uint64        `json:"resets_received"`
	ResetReasons      []ReasonCount `json:"reset_reasons,omitempty"`
	// Matched events were joined with an attempt; Unmatched were not (their
	// packets were not captured, or were filtered out); Evicted were
	// forgotten because the store was full; Malformed could not be decoded.
	Matched        uint64 `json:"matched"`
	Unmatched      uint64 `json:"unmatched"`
	Evicted        uint64 `json:"evicted"`
	Malformed      uint64 `json:"malformed"`
	Samples        int    `json:"samples"`
	SamplesThinned uint64 `json:"samples_thinned,omitempty"`
	// GhostsOmitted counts handshakes whose ACK the kernel dropped at the
	// listener beyond the analyze.MaxGhosts remembered for the accept-queue
	// findings.
	GhostsOmitted uint64 `json:"ghosts_omitted,omitempty"`
	// From the first and last counter samples.
	First     string            `json:"first,omitempty"`
	Last      string            `json:"last,omitempty"`
	Counters  []CounterDelta    `json:"counters_moved"`
	Sysctls   map[string]string `json:"sysctls,omitempty"`
	Conntrack *Conntrack        `json:"conntrack,omitempty"`
	Listeners []Listener        `json:"listeners,omitempty"`
}

// ReasonCount counts segments by drop (or reset) reason and, for drops, the
// kernel function that freed them.
type ReasonCount struct {
	Reason   string `json:"reason"`
	Location string `json:"location,omitempty"`
	Count    uint64 `json:"count"`
	Attempts uint64 `json:"attempts,omitempty"`
	// SYN: the segments are the clients' SYNs (incidents' drops only).
	SYN bool `json:"syn,omitempty"`
}

// CounterDelta is how much a kernel counter moved.
type CounterDelta struct {
	Name  string `json:"name"`
	Delta int64  `json:"delta"`
}

// Conntrack is the connection-tracking table's fill.
type Conntrack struct {
	Count int64 `json:"count"`
	Max   int64 `json:"max"`
}

// Listener is a listening socket: its backlog and the connections waiting
// in its accept queue (at the sample, or at its fullest for an incident).
type Listener struct {
	Addr    string `json:"addr"`
	Backlog uint32 `json:"backlog"`
	Queue   uint32 `json:"queue"`
	Full    bool   `json:"full,omitempty"`
}

// IncidentKernel is what the kernel said about an incident's attempts.
type IncidentKernel struct {
	Watched           uint64            `json:"attempts_watched"`
	SynDropped        uint64            `json:"attempts_syn_dropped"`
	OtherDropped      uint64            `json:"attempts_other_dropped"`
	Drops             []ReasonCount     `json:"drops"`
	SynackRetransmits uint64            `json:"synack_retransmits"`
	ResetsSent        uint64            `json:"resets_sent"`
	ResetsReceived    uint64            `json:"resets_received"`
	AttemptsWithReset uint64            `json:"attempts_with_reset_event"`
	ResetReasons      []ReasonCount     `json:"reset_reasons,omitempty"`
	SampleBefore      string            `json:"sample_before,omitempty"`
	SampleAfter       string            `json:"sample_after,omitempty"`
	Counters          []CounterDelta    `json:"counters_moved"`
	Sysctls           map[string]string `json:"sysctls,omitempty"`
	Listener          *Listener         `json:"listener,omitempty"`
	// AcksDropped counts, by reason and location, the attempts to the server
	// between the samples that completed the handshake on the wire while
	// this kernel dropped the client's ACK at the listener (full accept
	// queue): the clients believe they are connected. Such attempts may
	// belong to no incident.
	AcksDropped []ReasonCount `json:"handshake_acks_dropped,omitempty"`
	ThisHost    string        `json:"this_host,omitempty"` // server or client
	// FromSamples: the counts are of the incident's sample attempts only
	// (a timestamps incident).
	FromSamples bool      `json:"from_samples,omitempty"`
	Findings    []Finding `json:"findings"`
}

// Finding is one conclusion from the kernel evidence.
type Finding struct {
	Cause      string   `json:"cause"` // kernel_drop, accept_queue_overflow, syn_queue_overflow, paws, rp_filter, no_kernel_drop, upstream, synack_retransmits, kernel_resets
	Confidence string   `json:"confidence"`
	Attempts   uint64   `json:"attempts"`
	Text       string   `json:"text"`
	Evidence   []string `json:"evidence,omitempty"`
}

// AttemptKernel is what the kernel said about one attempt.
type AttemptKernel struct {
	SynDrops          int    `json:"syn_drops"`
	OtherDrops        int    `json:"other_drops"`
	DropReason        string `json:"drop_reason,omitempty"`
	DropLocation      string `json:"drop_location,omitempty"`
	OtherDropReason   string `json:"other_drop_reason,omitempty"`
	OtherDropLocation string `json:"other_drop_location,omitempty"`
	SynackRetransmits int    `json:"synack_retransmits,omitempty"`
	ResetsSent        int    `json:"resets_sent,omitempty"`
	ResetsReceived    int    `json:"resets_received,omitempty"`
	ResetReason       string `json:"reset_reason,omitempty"`
}

func newAttemptKernel(k *analyze.AttemptKernel) *AttemptKernel {
	if !k.Watched {
		return nil
	}
	return &AttemptKernel{SynDrops: int(k.SynDrops), OtherDrops: int(k.OtherDrops), DropReason: k.DropReason,
		DropLocation: k.DropLocation, OtherDropReason: k.OtherReason, OtherDropLocation: k.OtherLocation,
		SynackRetransmits: int(k.SynAckRetrans), ResetsSent: int(k.ResetsSent),
		ResetsReceived: int(k.ResetsRecv), ResetReason: k.ResetReason}
}

func reasons(rs []analyze.ReasonCount) []ReasonCount {
	out := []ReasonCount{}
	for _, r := range rs {
		out = append(out, ReasonCount{Reason: r.Reason, Location: r.Location, Count: r.Count, Attempts: r.Attempts, SYN: r.SYN})
	}
	return out
}

func deltas(ds []analyze.CounterDelta) []CounterDelta {
	out := []CounterDelta{}
	for _, d := range ds {
		out = append(out, CounterDelta{Name: d.Name, Delta: d.Delta})
	}
	return out
}

// NewKernel converts the run's kernel evidence; missing says what was not
// collected and why (from the capture side). It returns nil when there is
// nothing to say.
func NewKernel(k *analyze.Kernel, missing []string) *Kernel {
	if !k.Active() && len(missing) == 0 {
		return nil
	}
	t := k.Totals()
	out := &Kernel{Collected: k.Active(), Missing: append([]string(nil), missing...), Events: t.Events,
		Drops: reasons(t.Drops), DropsOther: t.DropsOther, SynackRetransmits: t.SynAckRetransmits,
		ResetsSent: t.ResetsSent, ResetsReceived: t.ResetsReceived, ResetReasons: reasons(t.ResetReasons),
		Matched: t.Matched, Unmatched: t.Unmatched, Evicted: t.Evicted, Malformed: t.Malformed,
		SamplesThinned: t.SamplesThinned, GhostsOmitted: t.GhostsOmitted, Counters: []CounterDelta{}}
	for _, n := range k.Notes() {
		out.Missing = append(out.Missing, n.Source+": "+n.Message)
	}
	samples := k.Samples()
	out.Samples = len(samples)
	seen := map[uint32]bool{}
	for _, s := range samples {
		if !seen[s.Netns] {
			seen[s.Netns] = true
			out.Netns = append(out.Netns, s.Netns)
		}
	}
	if len(samples) > 0 {
		first, last := samples[0], samples[len(samples)-1]
		out.First, out.Last = TimeString(first.Time), TimeString(last.Time)
		out.Counters = deltas(analyze.Deltas(first, last))
		out.Sysctls = first.Sysctls
		if last.ConntrackMax >= 0 {
			out.Conntrack = &Conntrack{Count: last.ConntrackCount, Max: last.ConntrackMax}
		}
		for _, l := range last.Listeners {
			out.Listeners = append(out.Listeners, Listener{Addr: l.Addr.String(), Backlog: l.Backlog, Queue: l.Queue, Full: l.Queue > l.Backlog})
		}
		miss := map[string]bool{}
		for _, s := range []*kevent.Sample{first, last} {
			for _, m := range s.Missing {
				if !miss[m] {
					miss[m] = true
					out.Missing = append(out.Missing, "counters: "+m)
				}
			}
		}
	}
	return out
}

func newIncidentKernel(ik *analyze.IncidentKernel) *IncidentKernel {
	if ik == nil {
		return nil
	}
	out := &IncidentKernel{Watched: ik.Watched, SynDropped: ik.SynDropped, OtherDropped: ik.OtherDropped,
		Drops: reasons(ik.Drops), SynackRetransmits: ik.SynAckRetrans, ResetsSent: ik.ResetsSent,
		ResetsReceived: ik.ResetsRecv, AttemptsWithReset: ik.WithReset, ResetReasons: reasons(ik.ResetReasons),
		SampleBefore: TimeString(ik.Before), SampleAfter: TimeString(ik.After), Counters: deltas(ik.Deltas),
		Sysctls: ik.Sysctls, ThisHost: ik.Local, FromSamples: ik.FromSamples, Findings: []Finding{}}
	if len(ik.AckDropped) > 0 {
		out.AcksDropped = reasons(ik.AckDropped)
	}
	if l := ik.Listener; l != nil {
		out.Listener = &Listener{Addr: l.Addr.String(), Backlog: l.Backlog, Queue: l.Queue, Full: ik.ListenerFull}
	}
	for _, f := range ik.Findings {
		out.Findings = append(out.Findings, Finding{Cause: f.Cause, Confidence: f.Confidence, Attempts: f.Attempts, Text: f.Text, Evidence: f.Evidence})
	}
	return out
}

// kernelChecks says what to look at next for each kernel finding.
var kernelChecks = map[string]string{
	"kernel_drop":           "the drop reason (include/net/dropreason-core.h) and the function that freed the packet; for NETFILTER_DROP `nft list ruleset` / `iptables-save -c` on this host: the rule whose counter rises",
	"accept_queue_overflow": "`ss -ltn` on the listener (Recv-Q against Send-Q), the application's accept loop and its listen() backlog, net.core.somaxconn",
	"syn_queue_overflow":    "net.ipv4.tcp_max_syn_backlog and tcp_syncookies; whether a SYN flood is under way",
	"paws":                  "clients behind one NAT address with different timestamp clocks; net.ipv4.tcp_timestamps and tcp_tw_reuse on both ends; `nstat -az TcpExtPAWS*`",
	"rp_filter":             "net.ipv4.conf.*.rp_filter against asymmetric routes to the clients",
	"no_kernel_drop":        "programs on the interface (`bpftool net`, `tc filter show`), NIC drops (`ethtool -S`), and the application's listener",
	"upstream":              "the path to the server (mtr), a capture at the server, the provider's firewalls and load balancers",
	"synack_retransmits":    "the path back to the clients and their firewalls: the SYN-ACK or the client's ACK was lost",
	"kernel_resets":         "the reset reasons, and how the application or the prober closes (SO_LINGER 0 sends RST)",
}

// kernelCauses turns the kernel's findings into the incident's leading
// causes: what the kernel says outranks what the wire suggests.
func kernelCauses(ik *IncidentKernel) []Cause {
	var out []Cause
	if ik == nil {
		return nil
	}
	for _, f := range ik.Findings {
		check := kernelChecks[f.Cause]
		if f.Cause == "synack_retransmits" && strings.Contains(f.Text, "dropped the clients' ACKs itself") {
			// Not the path: this host's own drops, the finding above.
			check = "why this host dropped the clients' ACKs: the finding above"
		}
		out = append(out, Cause{Cause: "kernel: " + f.Text, Confidence: f.Confidence, Evidence: f.Evidence, Check: check})
	}
	return out
}

// kernelLines is the "What the kernel saw" section of an incident, a line
// each, shared by the text, Markdown and HTML reports.
func kernelLines(ik *IncidentKernel) []string {
	if ik == nil {
		return nil
	}
	var out []string
	l := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	host := ""
	if ik.ThisHost != "" {
		host = " (this host is the " + ik.ThisHost + ")"
	}
	if ik.FromSamples {
		l("%s of the sample attempts ran while the kernel was watched%s", num(ik.Watched), host)
	} else {
		l("%s of the attempts ran while the kernel was watched%s", num(ik.Watched), host)
	}
	if len(ik.Drops) == 0 {
		l("drops: none on these attempts' 4-tuples")
	}
	for _, r := range ik.Drops {
		what := "segment(s) other than the SYN"
		if r.SYN {
			what = "SYN(s)"
		}
		l("dropped: %s %s of %s attempt(s), reason %s%s%s", num(r.Count), what, num(r.Attempts), r.Reason, locText(r.Location), reasonNote(r.Reason))
	}
	for _, r := range ik.AcksDropped {
		l("handshakes completed on the wire whose ACK this kernel dropped at the listener: %s attempt(s) to this server between the samples, reason %s%s (the clients believe they are connected)", num(r.Attempts), r.Reason, locText(r.Location))
	}
	if ik.SynackRetransmits > 0 {
		l("SYN-ACK retransmits by this kernel: %s", num(ik.SynackRetransmits))
	}
	if ik.ResetsSent+ik.ResetsReceived > 0 {
		l("resets: %s sent, %s received, on %s attempt(s)%s", num(ik.ResetsSent), num(ik.ResetsReceived), num(ik.AttemptsWithReset), reasonText(ik.ResetReasons))
	}
	if ik.SampleBefore != "" {
		moved := movedText(ik.Counters)
		if moved == "" {
			moved = "none of the watched counters"
		}
		l("counters from %s to %s: %s", shortTime(ik.SampleBefore), shortTime(ik.SampleAfter), moved)
	} else {
		l("counters: no samples around the incident")
	}
	if x := ik.Listener; x != nil {
		l("listener %s: backlog %d, up to %d waiting to be accepted%s", x.Addr, x.Backlog, x.Queue, fullText(x))
	}
	if len(ik.Sysctls) > 0 {
		keys := make([]string, 0, len(ik.Sysctls))
		for k := range ik.Sysctls {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var kv []string
		for _, k := range keys {
			kv = append(kv, strings.TrimPrefix(strings.TrimPrefix(k, "net.ipv4."), "net.core.")+"="+ik.Sysctls[k])
		}
		l("settings: %s", strings.Join(kv, " "))
	}
	return out
}

// attemptDropText says what the kernel dropped of one attempt: its SYNs
// and its other segments, each with their (first) reason.
func attemptDropText(k *AttemptKernel) string {
	var parts []string
	if k.SynDrops > 0 {
		parts = append(parts, fmt.Sprintf("%d SYN(s): %s", k.SynDrops, k.DropReason))
	}
	if k.OtherDrops > 0 {
		reason := k.OtherDropReason
		if reason == "" { // a report saved before other_drop_reason
			reason = k.DropReason
		}
		parts = append(parts, fmt.Sprintf("%d other segment(s): %s", k.OtherDrops, reason))
	}
	return "kernel dropped " + strings.Join(parts, ", ")
}

// reasonNote explains drop reasons that are not what they seem.
func reasonNote(reason string) string {
	switch reason {
	case "QUEUE_PURGE":
		return " (freed with their socket: received, never read by the application; not a network drop)"
	case "TCP_LISTEN_OVERFLOW":
		return " (the listener's accept queue was full)"
	}
	return ""
}

func locText(loc string) string {
	if loc == "" {
		return ""
	}
	return " at " + loc
}

func reasonText(rs []ReasonCount) string {
	if len(rs) == 0 {
		return ""
	}
	var parts []string
	for _, r := range rs {
		parts = append(parts, r.Reason+" "+num(r.Count))
	}
	return "; reasons: " + strings.Join(parts, ", ")
}

// kernelSummaryLines is the run-wide "What the kernel saw" section.
func kernelSummaryLines(k *Kernel) []string {
	if k == nil {
		return nil
	}
	var out []string
	l := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if !k.Collected {
		l("no kernel evidence was collected")
	} else {
		l("%s tracepoint events (%s joined with attempts, %s not, %s forgotten when the store was full), %s counter samples%s",
			num(k.Events), num(k.Matched), num(k.Unmatched), num(k.Evicted), itoa(k.Samples), sinceText(k))
		if len(k.Drops) == 0 {
			l("TCP drops: none")
		}
		for _, r := range k.Drops {
			l("TCP drops: %s, reason %s%s%s", num(r.Count), r.Reason, locText(r.Location), reasonNote(r.Reason))
		}
		if k.DropsOther > 0 {
			l("TCP drops with other reasons: %s", num(k.DropsOther))
		}
		if k.GhostsOmitted > 0 {
			l("handshakes whose ACK the listener dropped, beyond the %s remembered: %s (not in the accept-queue findings)", num(analyze.MaxGhosts), num(k.GhostsOmitted))
		}
		l("SYN-ACK retransmits: %s; resets sent: %s, received: %s%s", num(k.SynackRetransmits), num(k.ResetsSent), num(k.ResetsReceived), reasonText(k.ResetReasons))
		if moved := movedText(k.Counters); moved != "" {
			l("counters moved: %s", moved)
		}
		for i := range k.Listeners {
			x := &k.Listeners[i]
			l("listener %s: backlog %d, %d waiting at the end%s", x.Addr, x.Backlog, x.Queue, fullText(x))
		}
		if k.Conntrack != nil {
			l("conntrack: %d of %d entries", k.Conntrack.Count, k.Conntrack.Max)
		}
		if k.Malformed > 0 {
			l("kernel records that could not be decoded: %s", num(k.Malformed))
		}
	}
	for _, m := range k.Missing {
		l("missing: %s", m)
	}
	return out
}

func sinceText(k *Kernel) string {
	if k.First == "" {
		return ""
	}
	return ", " + shortTime(k.First) + " to " + shortTime(k.Last)
}

func writeKernelText(w io.Writer, title string, lines []string, indent string) {
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "%s%s\n", indent, title)
	for _, s := range lines {
		fmt.Fprintf(w, "%s  - %s\n", indent, s)
	}
}

// movedText lists counters that moved ("TcpExt.ListenOverflows +3, ...").
func movedText(cs []CounterDelta) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s %+d", c.Name, c.Delta)
	}
	return strings.Join(parts, ", ")
}

func fullText(l *Listener) string {
	if l.Full {
		return " (full)"
	}
	return ""
}
