package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/synscope/synscope/analyze"
)

// WriteMarkdown writes the report as Markdown (CommonMark with GitHub
// tables), ready to paste into a support ticket: a title, a summary
// paragraph, the verdict, one section per incident with its evidence,
// suspected causes and sample packet timelines, then the sources and the
// settings. It emits no raw HTML: every value from the report is escaped, so
// markup in a capture's data (a hostile file name, say) shows as text.
func WriteMarkdown(w io.Writer, r *Report) error {
	ew := &errWriter{w: w}
	p := func(format string, args ...any) { fmt.Fprintf(ew, format, args...) }

	if notes := r.Live.Notes(); len(notes) > 0 {
		for _, n := range notes {
			p("> **%s.**\n>\n", mdEscape(n))
		}
		p("\n")
	}
	p("# %s\n\n", mdEscape(viewTitle(r)))
	p("%s\n\n", mdEscape(strings.Join(viewSummary(r), " ")))

	p("## Verdict: where the failed or slow attempts went\n\n")
	if len(r.Verdict.Rows) == 0 {
		p("No verdict in this report.\n\n")
	} else {
		mdTable(ew, []string{"where", "attempts", "share", "incidents", "meaning"}, "-rr--", func(row func(...string)) {
			for _, v := range r.Verdict.Rows {
				row(v.Category, num(v.Attempts), viewShare(v.Share), viewIncidentIDs(v.Incidents), v.Meaning)
			}
		})
	}

	s := &r.Summary
	p("## Outcomes\n\n")
	mdTable(ew, []string{"outcome", "attempts", "share", "meaning"}, "-rr-", func(row func(...string)) {
		for x := analyze.Outcome(0); x < analyze.NumOutcomes; x++ {
			n := s.Outcomes.Get(x)
			row(x.String(), num(n), pct(n, s.Attempts), OutcomeHelp[x.String()])
		}
	})
	p("Handshake packets: %s SYN (%s retransmitted), %s SYN-ACK (%s retransmitted). Resets after the handshake: %s by clients, %s by servers.\n\n",
		num(s.SynPackets), num(s.SynRetransmits), num(s.SynackPackets), num(s.SynackRetransmits),
		num(s.ResetsAfterHandshake.ByClient), num(s.ResetsAfterHandshake.ByServer))

	if r.Kernel != nil {
		p("## What the kernel saw\n\n")
		for _, s := range kernelSummaryLines(r.Kernel) {
			p("- %s\n", mdBlock(s))
		}
		p("\n")
	}
	if len(r.Incidents) == 0 {
		p("## Incidents\n\nNo incidents.\n\n")
	} else {
		p("## Incidents (%d)\n\n", len(r.Incidents))
		if r.IncidentsOmitted > 0 {
			p("%s more incidents were not kept (raise --max-incidents).\n\n", num(r.IncidentsOmitted))
		}
	}
	for i := range r.Incidents {
		mdIncident(ew, &r.Incidents[i])
	}

	if n := len(r.Attempts); n > 0 || r.AttemptsOmitted > 0 {
		what := "anomalous attempts"
		if r.Listing == "all" {
			what = "attempts"
		}
		p("The report lists %d %s", n, what)
		if r.AttemptsOmitted > 0 {
			p(" (%s more not listed)", num(r.AttemptsOmitted))
		}
		p("; see the JSON or HTML report for the full list.\n\n")
	}

	p("## Sources\n\n")
	mdTable(ew, []string{"source", "format", "link types", "packets", "bytes", "first", "last", "status"}, "---rr---", func(row func(...string)) {
		for i := range r.Sources {
			src := &r.Sources[i]
			row(src.Path, viewSourceFormat(src), strings.Join(src.LinkTypes, ", "), num(src.Packets), num(uint64(max(src.Bytes, 0))),
				shortTime(src.First), shortTime(src.Last), viewSourceStatus(src))
		}
	})

	p("## Settings\n\n")
	mdTable(ew, []string{"setting", "value"}, "--", func(row func(...string)) {
		for _, kv := range viewSettings(r) {
			row(kv.Key, kv.Value)
		}
	})
	return ew.err
}

func mdIncident(w io.Writer, inc *Incident) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("### Incident #%d: %s, %s, %s, %s\n\n", inc.ID, mdEscape(inc.Kind), mdEscape(inc.Severity), mdEscape(inc.Server), mdEscape(viewSpan(inc.Start, inc.End)))
	if inc.Title != "" {
		p("**%s**\n\n", mdEscape(inc.Title))
	}
	p("Key numbers:\n\n")
	for _, kv := range viewKeyNumbers(inc) {
		p("- %s: %s\n", mdEscape(kv.Key), mdEscape(kv.Value))
	}
	p("\n")
	if len(inc.Evidence) > 0 {
		p("Evidence:\n\n")
		for _, e := range inc.Evidence {
			p("- %s\n", mdBlock(e))
		}
		p("\n")
	}
	if len(inc.Causes) > 0 {
		p("Suspected causes, most likely first:\n\n")
		for j, c := range inc.Causes {
			p("%d. %s (confidence: %s)\n", j+1, mdBlock(c.Cause), mdEscape(c.Confidence))
			if c.Check != "" {
				p("   - check: %s\n", mdEscape(c.Check))
			}
			for _, e := range c.Evidence {
				p("   - because: %s\n", mdEscape(e))
			}
		}
		p("\n")
	}
	if lines := kernelLines(inc.Kernel); len(lines) > 0 {
		p("What the kernel saw:\n\n")
		for _, s := range lines {
			p("- %s\n", mdBlock(s))
		}
		p("\n")
	}
	for j := range inc.Samples {
		a := &inc.Samples[j]
		p("#### %s\n\n", mdEscape(viewAttemptHeading(a)))
		if d := Detail(a); d != "" {
			p("%s\n\n", mdBlock(d))
		}
		if len(a.Timeline) == 0 {
			p("No packet timeline recorded.\n\n")
			continue
		}
		mdTable(w, []string{"offset ms", "direction", "flags", "seq", "ack", "len", "note"}, "r--rrr-", func(row func(...string)) {
			for k := range a.Timeline {
				e := &a.Timeline[k]
				row(viewOffset(e.OffsetMs), viewDir(e), e.Flags, strconv.FormatUint(uint64(e.Seq), 10),
					strconv.FormatUint(uint64(e.Ack), 10), strconv.FormatUint(uint64(e.Len), 10), e.Note)
			}
		})
		if a.TimelineOmitted > 0 {
			p("(%d more packets not recorded.)\n\n", a.TimelineOmitted)
		}
	}
	if inc.SamplesOmitted > 0 {
		p("%s more attempts in this incident are not shown.\n\n", num(inc.SamplesOmitted))
	}
}

// mdTable writes a GitHub table; align has one byte per column, 'r' for
// right-aligned (numbers), anything else for left.
func mdTable(w io.Writer, header []string, align string, rows func(row func(...string))) {
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			b.WriteString(" ")
			b.WriteString(mdCell(c))
			b.WriteString(" |")
		}
		b.WriteString("\n")
	}
	line(header)
	b.WriteString("|")
	for i := range header {
		if i < len(align) && align[i] == 'r' {
			b.WriteString("--:|")
		} else {
			b.WriteString("---|")
		}
	}
	b.WriteString("\n")
	rows(func(cells ...string) {
		for len(cells) < len(header) {
			cells = append(cells, "")
		}
		line(cells[:len(header)])
	})
	b.WriteString("\n")
	io.WriteString(w, b.String())
}

// mdCell escapes a table cell: inline escapes (which include '|'), on one line.
func mdCell(s string) string {
	s = strings.TrimSpace(mdEscape(s))
	if s == "" {
		return " "
	}
	return s
}

// mdEscape makes text literal in CommonMark/GFM inline context: it
// backslash-escapes the characters that start markup (emphasis, code, links,
// raw HTML, table pipes, strikethrough), an '&' that could start an entity,
// and '_' only where it could open or close emphasis (intraword underscores,
// as in unanswered_syn, are literal already and stay readable). Line breaks
// become spaces, so a value never breaks out of its table cell or list item.
func mdEscape(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\', '`', '*', '[', ']', '<', '>', '|', '~':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '_':
			if i > 0 && i < len(s)-1 && mdWordByte(s[i-1]) && mdWordByte(s[i+1]) {
				b.WriteByte(c)
			} else {
				b.WriteString(`\_`)
			}
		case '&':
			if i+1 < len(s) && (mdWordByte(s[i+1]) || s[i+1] == '#') {
				b.WriteString(`\&`)
			} else {
				b.WriteByte(c)
			}
		case '\r', '\n', '\t':
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func mdWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// mdBlock escapes text that starts a block (a paragraph or list item), where
// a leading '#', '-', '+', '=' or "1." would start a heading or a list.
func mdBlock(s string) string {
	s = strings.TrimLeft(mdEscape(s), " ")
	if s == "" {
		return s
	}
	switch s[0] {
	case '#', '-', '+', '=':
		return `\` + s
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i > 0 && i < len(s) && (s[i] == '.' || s[i] == ')') {
		return s[:i] + `\` + s[i:]
	}
	return s
}
