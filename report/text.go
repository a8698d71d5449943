package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/synscope/synscope/analyze"
)

// OutcomeHelp explains each outcome in one line, for reports and --help.
var OutcomeHelp = map[string]string{
	"established":               "handshake completed on the first SYN",
	"answered_after_retransmit": "completed, but only after the client retransmitted its SYN",
	"unanswered":                "no SYN-ACK, RST or ICMP error came back and the client gave up",
	"refused":                   "the server (RST) or the network (ICMP unreachable) refused the SYN",
	"abandoned":                 "the server answered with a SYN-ACK but the handshake never completed",
	"undetermined":              "the capture ended too soon after the last SYN to tell",
	"partial":                   "the capture started mid-connection (not an anomaly)",
}

func newTable(w io.Writer, header ...string) *tablewriter.Table {
	t := tablewriter.NewTable(w,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{Symbols: tw.NewSymbols(tw.StyleASCII)})),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithTrimSpace(tw.Off),
	)
	t.Header(header)
	return t
}

// WriteText writes the human report: sources, summary, then the anomalous
// attempts (or every attempt, when the report lists all).
func WriteText(w io.Writer, r *Report) error {
	ew := &errWriter{w: w}
	s := &r.Summary
	if notes := r.Live.Notes(); len(notes) > 0 {
		for _, n := range notes {
			fmt.Fprintf(ew, "synscope live: %s.\n", n)
		}
		fmt.Fprintln(ew)
	}
	fmt.Fprintf(ew, "synscope: %s packets, %s TCP, %s connection attempts", num(s.Packets), num(s.TCPPackets), num(s.Attempts))
	if s.First != "" {
		fmt.Fprintf(ew, ", %s to %s (%s)", shortTime(s.First), shortTime(s.Last), dur(s.DurationS))
	}
	fmt.Fprintln(ew)
	if r.Filter != "" {
		fmt.Fprintf(ew, "filter: %s (%s packets did not match)\n", r.Filter, num(s.Filtered))
	}
	fmt.Fprintln(ew)

	t := newTable(ew, "source", "format", "link types", "packets", "first", "last", "status")
	for _, src := range r.Sources {
		status := "ok"
		switch {
		case src.Error != "":
			status = "DAMAGED: " + src.Error
		case src.Anomalies > 0:
			status = fmt.Sprintf("%s damaged record(s), read anyway; first: %s", num(src.Anomalies), src.FirstAnomaly)
		}
		format := src.Format
		if src.Compressed {
			format += "+gzip"
		}
		t.Append([]string{src.Path, format, strings.Join(src.LinkTypes, ","), num(src.Packets), shortTime(src.First), shortTime(src.Last), status})
	}
	t.Render()
	fmt.Fprintln(ew)

	fmt.Fprintln(ew, "Outcomes")
	t = newTable(ew, "outcome", "attempts", "share", "meaning")
	for x := analyze.Outcome(0); x < analyze.NumOutcomes; x++ {
		n := s.Outcomes.Get(x)
		t.Append([]string{x.String(), num(n), pct(n, s.Attempts), OutcomeHelp[x.String()]})
	}
	t.Footer([]string{"total", num(s.Outcomes.Sum()), pct(s.Outcomes.Sum(), s.Attempts), ""})
	t.Render()
	fmt.Fprintln(ew)

	fmt.Fprintf(ew, "Handshake packets: %s SYN (%s retransmitted), %s SYN-ACK (%s retransmitted)\n",
		num(s.SynPackets), num(s.SynRetransmits), num(s.SynackPackets), num(s.SynackRetransmits))
	fmt.Fprintf(ew, "Timestamp option: on %s of %s SYNs, %s of %s SYN-ACKs\n",
		num(s.Timestamps.SynWithTS), num(s.SynPackets), num(s.Timestamps.SynackWithTS), num(s.SynackPackets))
	fmt.Fprintf(ew, "Resets after the handshake: %s by clients, %s by servers\n",
		num(s.ResetsAfterHandshake.ByClient), num(s.ResetsAfterHandshake.ByServer))
	if s.LostEvents > 0 {
		fmt.Fprintf(ew, "LOST during live capture: %s packets or events (engine, kernel or queue): the report covers what arrived\n", num(s.LostEvents))
	}
	fmt.Fprintf(ew, "Not tracked: %s duplicates, %s IP fragments, %s malformed, %s on unsupported links%s, %s non-TCP; %s out-of-order timestamps; %s attempts evicted (table full)\n",
		num(s.Duplicates), num(s.Fragments), num(s.Malformed), num(s.Unsupported), linkList(s.UnsupportedLinks), num(s.NonTCP),
		num(s.OutOfOrder), num(s.Evicted))
	if r.ServersNotCounted+r.ProbersNotWatched > 0 {
		fmt.Fprintf(ew, "Bounds reached: %s attempts to servers beyond the 4,096 counted per server (shares and the timestamp finding leave them out); %s client/server pairs not watched for health checks\n",
			num(r.ServersNotCounted), num(r.ProbersNotWatched))
	}
	fmt.Fprintln(ew)

	writeVerdictText(ew, r)
	if r.Kernel != nil {
		writeKernelText(ew, "What the kernel saw", kernelSummaryLines(r.Kernel), "")
		fmt.Fprintln(ew)
	}
	writeIncidentsText(ew, r)

	title := "Anomalous attempts"
	if r.Listing == "all" {
		title = "Attempts"
	}
	if len(r.Attempts) == 0 {
		fmt.Fprintf(ew, "%s: none\n", title)
		return ew.err
	}
	fmt.Fprintf(ew, "%s (%d listed", title, len(r.Attempts))
	if r.AttemptsOmitted > 0 {
		fmt.Fprintf(ew, ", %s more not listed: raise --max-listed", num(r.AttemptsOmitted))
	}
	fmt.Fprintln(ew, ")")
	t = newTable(ew, "id", "start", "client", "server", "outcome", "syn", "syn-ack", "close", "detail")
	for i := range r.Attempts {
		a := &r.Attempts[i]
		cl := a.Close
		if a.Close != "none" {
			cl += " by " + a.ClosedBy
		}
		t.Append([]string{strconv.FormatUint(a.ID, 10), shortTime(a.Start), a.Client, a.Server + vlanSuffix(a.VLAN), a.Outcome,
			strconv.Itoa(a.Syns), strconv.Itoa(a.Synacks), cl, Detail(a)})
	}
	t.Render()
	return ew.err
}

// Detail says in a few words what happened to an attempt.
func Detail(a *Attempt) string {
	var parts []string
	if a.Syns > 1 {
		parts = append(parts, "SYNs at "+offsets(a.SynOffsetsMs))
	}
	switch a.Outcome {
	case "unanswered":
		if a.Close == "rst" {
			parts = append(parts, "no answer; the client reset")
		} else {
			parts = append(parts, "no answer")
		}
	case "refused":
		if a.ICMP != nil {
			parts = append(parts, fmt.Sprintf("ICMP unreachable type %d code %d from %s", a.ICMP.Type, a.ICMP.Code, a.ICMP.From))
		} else {
			parts = append(parts, "RST from the server")
		}
	case "abandoned":
		parts = append(parts, fmt.Sprintf("%d SYN-ACK(s), handshake never completed", a.Synacks))
	case "answered_after_retransmit":
		if a.RetransmitDelayMs != nil {
			parts = append(parts, fmt.Sprintf("retransmits added %s", msText(*a.RetransmitDelayMs)))
		}
	}
	if a.HandshakeRTTMs != nil {
		parts = append(parts, "rtt "+msText(*a.HandshakeRTTMs))
	}
	if a.TTFBMs != nil {
		parts = append(parts, "ttfb "+msText(*a.TTFBMs))
	}
	if a.Close != "none" && a.ClosePhase != "none" && a.Outcome != "refused" {
		parts = append(parts, a.Close+" "+strings.ReplaceAll(a.ClosePhase, "_", " "))
	}
	parts = append(parts, a.Flags...)
	if k := a.Kernel; k != nil && k.SynDrops+k.OtherDrops > 0 {
		parts = append(parts, attemptDropText(k))
	}
	return strings.Join(parts, "; ")
}

func offsets(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strings.TrimRight(strings.TrimRight(strconv.FormatFloat(x/1000, 'f', 3, 64), "0"), ".")
	}
	return strings.Join(s, ", ") + " s"
}

func msText(v float64) string {
	if v >= 1000 {
		return strconv.FormatFloat(v/1000, 'f', 2, 64) + " s"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
}

func vlanSuffix(v []uint16) string {
	if len(v) == 0 {
		return ""
	}
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(int(x))
	}
	return " vlan " + strings.Join(s, ".")
}

func linkList(m map[string]uint64) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	for i, k := range keys {
		keys[i] = k + ": " + num(m[k])
	}
	return " (" + strings.Join(keys, ", ") + ")"
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func shortTime(s string) string {
	if s == "" {
		return "-"
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2006-01-02 15:04:05.000")
}

func dur(sec float64) string {
	return time.Duration(sec * float64(time.Second)).Round(time.Millisecond).String()
}

func pct(n, of uint64) string {
	if of == 0 {
		return "-"
	}
	return strconv.FormatFloat(100*float64(n)/float64(of), 'f', 1, 64) + "%"
}

// num formats a count with thousands separators.
func num(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func writeVerdictText(w io.Writer, r *Report) {
	if len(r.Verdict.Rows) == 0 {
		return
	}
	fmt.Fprintln(w, "Verdict: where the failed or slow attempts went")
	t := newTable(w, "where", "attempts", "share", "incidents", "meaning")
	for _, row := range r.Verdict.Rows {
		ids := make([]string, len(row.Incidents))
		for i, id := range row.Incidents {
			ids[i] = "#" + strconv.Itoa(id)
		}
		t.Append([]string{row.Category, num(row.Attempts), strconv.FormatFloat(100*row.Share, 'f', 1, 64) + "%", strings.Join(ids, " "), row.Meaning})
	}
	t.Render()
	fmt.Fprintln(w)
}

func writeIncidentsText(w io.Writer, r *Report) {
	if len(r.Incidents) == 0 {
		fmt.Fprintln(w, "Incidents: none")
		fmt.Fprintln(w)
		return
	}
	fmt.Fprintf(w, "Incidents (%d", len(r.Incidents))
	if r.IncidentsOmitted > 0 {
		fmt.Fprintf(w, ", %s more not kept: raise --max-incidents", num(r.IncidentsOmitted))
	}
	fmt.Fprintln(w, ")")
	for i := range r.Incidents {
		inc := &r.Incidents[i]
		fmt.Fprintf(w, "\n#%d %s [%s] %s, %s to %s\n", inc.ID, inc.Kind, inc.Severity, inc.Server, shortTime(inc.Start), shortTime(inc.End))
		fmt.Fprintf(w, "  %s\n", inc.Title)
		for _, e := range inc.Evidence {
			fmt.Fprintf(w, "  - %s\n", e)
		}
		for j, c := range inc.Causes {
			fmt.Fprintf(w, "  %d. %s (confidence: %s)\n     check: %s\n", j+1, c.Cause, c.Confidence, c.Check)
			for _, e := range c.Evidence {
				fmt.Fprintf(w, "     because: %s\n", e)
			}
		}
		writeKernelText(w, "What the kernel saw:", kernelLines(inc.Kernel), "  ")
		if len(inc.Samples) > 0 {
			ids := make([]string, len(inc.Samples))
			for j := range inc.Samples {
				ids[j] = strconv.FormatUint(inc.Samples[j].ID, 10)
			}
			fmt.Fprintf(w, "  sample attempts: %s", strings.Join(ids, ", "))
			if inc.SamplesOmitted > 0 {
				fmt.Fprintf(w, " (%s more)", num(inc.SamplesOmitted))
			}
			fmt.Fprintln(w)
			writeTimeline(w, &inc.Samples[0])
		}
	}
	fmt.Fprintln(w)
}

// writeTimeline prints one attempt's packets, the way an engineer reads a
// handshake: offset, direction, flags, sequence numbers and why it matters.
func writeTimeline(w io.Writer, a *Attempt) {
	fmt.Fprintf(w, "  attempt %d, %s -> %s:\n", a.ID, a.Client, a.Server)
	for _, e := range a.Timeline {
		arrow := "->"
		if e.Dir == "server" {
			arrow = "<-"
		}
		fmt.Fprintf(w, "    %10.3f ms  %s %-5s seq %-10d ack %-10d len %-5d %s\n", e.OffsetMs, arrow, e.Flags, e.Seq, e.Ack, e.Len, e.Note)
	}
	if a.TimelineOmitted > 0 {
		fmt.Fprintf(w, "    (%d more packets)\n", a.TimelineOmitted)
	}
}
