package report

// Plain-text pieces shared by the Markdown and HTML renderers: each renderer
// escapes them for its own syntax. Everything here is deterministic (map
// keys are sorted) so that a report renders to the same bytes every time.

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/synscope/synscope/analyze"
)

// viewKV is one labelled value (key numbers, settings).
type viewKV struct {
	Key, Value string
}

// viewSeverityRank orders severities, most severe first.
func viewSeverityRank(s string) int {
	switch s {
	case "critical":
		return 0
	case "warning":
		return 1
	case "notable":
		return 2
	}
	return 3
}

// viewMainIncident is the incident a reader should look at first: the most
// severe, then the one with most attempts, then the earliest id.
func viewMainIncident(r *Report) *Incident {
	var best *Incident
	for i := range r.Incidents {
		inc := &r.Incidents[i]
		if best == nil {
			best = inc
			continue
		}
		a, b := viewSeverityRank(inc.Severity), viewSeverityRank(best.Severity)
		if a < b || (a == b && (inc.Attempts > best.Attempts || (inc.Attempts == best.Attempts && inc.ID < best.ID))) {
			best = inc
		}
	}
	return best
}

// viewTitle names the report after its sources.
func viewTitle(r *Report) string {
	names := make([]string, 0, len(r.Sources))
	for _, s := range r.Sources {
		p := s.Path
		if i := strings.LastIndexAny(p, `/\`); i >= 0 && i < len(p)-1 {
			p = p[i+1:]
		}
		names = append(names, p)
	}
	switch {
	case len(names) == 0:
		return "synscope report"
	case len(names) > 3:
		return "synscope report: " + strings.Join(names[:3], ", ") + " and " + strconv.Itoa(len(names)-3) + " more"
	}
	return "synscope report: " + strings.Join(names, ", ")
}

// viewSpan formats a time span compactly: the date once when both ends fall
// on the same day.
func viewSpan(start, end string) string {
	a, errA := time.Parse(time.RFC3339Nano, start)
	b, errB := time.Parse(time.RFC3339Nano, end)
	if errA != nil || errB != nil {
		return shortTime(start) + " to " + shortTime(end)
	}
	a, b = a.UTC(), b.UTC()
	if a.Format("2006-01-02") == b.Format("2006-01-02") {
		return a.Format("2006-01-02 15:04:05.000") + " to " + b.Format("15:04:05.000") + " UTC"
	}
	return a.Format("2006-01-02 15:04:05.000") + " to " + b.Format("2006-01-02 15:04:05.000") + " UTC"
}

// viewShare formats a 0..1 fraction as a percentage.
func viewShare(f float64) string {
	return strconv.FormatFloat(100*f, 'f', 1, 64) + "%"
}

// viewSummary is the report in a few sentences: what was read, what
// happened to the attempts, and the main failure.
func viewSummary(r *Report) []string {
	s := &r.Summary
	var out []string
	read := num(s.Packets) + " packets (" + num(s.TCPPackets) + " TCP) read from "
	switch {
	case len(r.Sources) == 0:
		read += "no source"
	case len(r.Sources) <= 3:
		paths := make([]string, len(r.Sources))
		for i, src := range r.Sources {
			paths[i] = src.Path
		}
		read += strings.Join(paths, ", ")
	default:
		read += strconv.Itoa(len(r.Sources)) + " sources"
	}
	if s.First != "" {
		read += ", " + viewSpan(s.First, s.Last) + " (" + dur(s.DurationS) + ")"
	}
	read += ": " + viewPlural(s.Attempts, "TCP connection attempt", "TCP connection attempts")
	var parts []string
	for _, o := range []struct {
		x    analyze.Outcome
		text string
	}{
		{analyze.OutcomeEstablished, "established on the first SYN"},
		{analyze.OutcomeAnsweredAfterRetransmit, "answered only after SYN retransmits"},
		{analyze.OutcomeUnanswered, "unanswered"},
		{analyze.OutcomeRefused, "refused"},
		{analyze.OutcomeAbandoned, "abandoned after the SYN-ACK"},
		{analyze.OutcomeUndetermined, "undetermined (the capture ended too soon)"},
		{analyze.OutcomePartial, "already open when the capture started"},
	} {
		if n := s.Outcomes.Get(o.x); n > 0 {
			parts = append(parts, num(n)+" "+o.text)
		}
	}
	if len(parts) > 0 {
		read += ": " + strings.Join(parts, ", ")
	}
	out = append(out, read+".")
	if r.Filter != "" {
		out = append(out, "Only packets matching the filter '"+r.Filter+"' were analysed ("+num(s.Filtered)+" did not match).")
	}
	damaged := 0
	for _, src := range r.Sources {
		if src.Error != "" || src.Anomalies > 0 {
			damaged++
		}
	}
	if damaged > 0 {
		out = append(out, viewPlural(uint64(damaged), "source was", "sources were")+" damaged; the report covers what could be read (see Sources).")
	}
	if inc := viewMainIncident(r); inc != nil {
		lead := "Main failure"
		if inc.Severity == "notable" {
			lead = "Main finding"
		}
		out = append(out, lead+" (incident #"+strconv.Itoa(inc.ID)+", "+inc.Severity+"): "+strings.TrimSuffix(inc.Title, ".")+".")
		if len(r.Incidents) > 1 {
			out = append(out, viewPlural(uint64(len(r.Incidents)), "incident", "incidents")+" in all.")
		}
	} else {
		out = append(out, "No incidents: no failed or slow handshakes were found.")
	}
	return out
}

// viewKeyNumbers are an incident's numbers, labelled.
func viewKeyNumbers(inc *Incident) []viewKV {
	var out []viewKV
	add := func(k, v string) { out = append(out, viewKV{k, v}) }
	att := num(inc.Attempts)
	if inc.ServerAttempts > 0 {
		att += " of " + num(inc.ServerAttempts) + " to " + inc.Server + " in this window (" + viewShare(inc.Share) + ")"
	}
	add("attempts", att)
	add("clients", num(inc.Clients))
	add("time", viewSpan(inc.Start, inc.End))
	if inc.Schedule != "" {
		add("retransmit schedule", inc.Schedule)
	}
	if inc.DelayP50Ms != nil || inc.DelayMaxMs != nil {
		var p []string
		if inc.DelayP50Ms != nil {
			p = append(p, "median "+msText(*inc.DelayP50Ms))
		}
		if inc.DelayMaxMs != nil {
			p = append(p, "max "+msText(*inc.DelayMaxMs))
		}
		add("delay", strings.Join(p, ", "))
	}
	if len(inc.BySide) > 0 {
		add("by side", viewCounts(inc.BySide))
	}
	if len(inc.ByPhase) > 0 {
		add("by phase", viewCounts(inc.ByPhase))
	}
	if inc.Prober != "" {
		add("prober", inc.Prober)
	}
	if inc.IntervalS != nil {
		add("interval", strings.TrimSuffix(strings.TrimRight(strconv.FormatFloat(*inc.IntervalS, 'f', 3, 64), "0"), ".")+" s")
	}
	if inc.JitterMs != nil {
		add("jitter", msText(*inc.JitterMs))
	}
	if t := inc.Timestamps; t != nil {
		add("SYNs offering timestamps", num(t.SynsOffering)+" (not offering: "+num(t.SynsNotOffering)+")")
		add("SYN-ACKs with timestamps", num(t.SynacksWithTS)+" (without: "+num(t.SynacksWithoutTS)+")")
		if t.UnansweredWithTS != nil || t.UnansweredNoTS != nil {
			rate := func(p *float64) string {
				if p == nil {
					return "-"
				}
				return viewShare(*p)
			}
			add("unanswered rate", "with timestamps "+rate(t.UnansweredWithTS)+", without "+rate(t.UnansweredNoTS))
		}
	}
	if len(inc.Samples) > 0 || inc.SamplesOmitted > 0 {
		v := strconv.Itoa(len(inc.Samples)) + " shown"
		if inc.SamplesOmitted > 0 {
			v += ", " + num(inc.SamplesOmitted) + " more not kept"
		}
		add("sample attempts", v)
	}
	return out
}

// viewCounts renders a count map with sorted keys: "client 2, server 1".
func viewCounts(m map[string]uint64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = strings.ReplaceAll(k, "_", " ") + " " + num(m[k])
	}
	return strings.Join(keys, ", ")
}

// viewDir turns an event's sender into a direction.
func viewDir(e *Event) string {
	switch {
	case strings.HasPrefix(e.Flags, "icmp"):
		return "network→client"
	case e.Dir == "client":
		return "client→server"
	case e.Dir == "server":
		return "server→client"
	}
	return e.Dir
}

// viewOffset formats a timeline offset in ms.
func viewOffset(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }

// viewAttemptHeading names a sample attempt.
func viewAttemptHeading(a *Attempt) string {
	return "Attempt " + strconv.FormatUint(a.ID, 10) + ": " + a.Client + " → " + a.Server + vlanSuffix(a.VLAN) + " (" + a.Outcome + ")"
}

// viewSourceStatus says whether a source was read cleanly.
func viewSourceStatus(src *Source) string {
	switch {
	case src.Error != "":
		return "DAMAGED: " + src.Error
	case src.Anomalies > 0:
		return num(src.Anomalies) + " damaged record(s), read anyway; first: " + src.FirstAnomaly
	}
	return "ok"
}

func viewSourceFormat(src *Source) string {
	if src.Compressed {
		return src.Format + "+gzip"
	}
	return src.Format
}

// viewSettings lists the knobs that shaped the verdicts.
func viewSettings(r *Report) []viewKV {
	st := &r.Settings
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	listing := "anomalous attempts"
	if r.Listing == "all" {
		listing = "all attempts"
	}
	out := []viewKV{
		{"SYN timeout (--syn-timeout)", dur(st.SynTimeoutS)},
		{"handshake idle (--handshake-idle)", dur(st.HandshakeIdleS)},
		{"established idle (--idle)", dur(st.EstablishedIdleS)},
		{"max flows (--max-flows)", strconv.Itoa(st.MaxFlows)},
		{"max listed (--max-listed)", strconv.Itoa(st.MaxListed)},
		{"incident gap (--incident-gap)", dur(st.IncidentGapS)},
		{"slow response (--slow)", dur(st.SlowS)},
		{"anonymized", yesNo(st.Anonymized)},
		{"listing", listing},
	}
	if r.Filter != "" {
		out = append(out, viewKV{"filter", r.Filter})
	}
	out = append(out, viewKV{"generator", r.Generator}, viewKV{"schema", r.Schema})
	return out
}

// viewIncidentIDs renders verdict incident ids as "#1, #2".
func viewIncidentIDs(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = "#" + strconv.Itoa(id)
	}
	return strings.Join(s, ", ")
}

func viewPlural(n uint64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return num(n) + " " + many
}
