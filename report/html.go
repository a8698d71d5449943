package report

import (
	"html/template"
	"io"
	"strconv"
	"strings"

	"github.com/synscope/synscope/analyze"
)

// WriteHTML writes the report as one self-contained HTML page: inline CSS,
// inline SVG charts (attempts and failures over time, and histograms of
// handshake RTT and time to first byte), the verdict, the incidents with
// their packet timelines, the listed attempts, the sources and the settings.
// It uses no JavaScript and refers to nothing outside the file (no fonts,
// images, scripts or links other than to its own sections), so it can be
// attached to a ticket and opened offline; a Content-Security-Policy of
// default-src 'none' makes the browser refuse any load regardless. Every
// value is escaped by html/template.
func WriteHTML(w io.Writer, r *Report) error {
	return htmlTemplate.Execute(w, newHTMLView(r))
}

type htmlView struct {
	Title            string
	Summary          []string
	Stats            []viewKV
	Charts           []svgChart
	Verdict          []htmlVerdictRow
	Outcomes         []htmlOutcomeRow
	OutcomesTotal    htmlOutcomeRow
	Handshake        string
	Incidents        []htmlIncident
	IncidentsOmitted string
	Kernel           []string
	LiveNotes        []string
	AttemptsTitle    string
	AttemptsNote     string
	Attempts         []htmlAttemptRow
	Sources          []htmlSourceRow
	Settings         []viewKV
	Generator        string
}

type htmlVerdictRow struct {
	Category, Attempts, Share, Meaning string
	Zero                               bool
	Incidents                          []htmlRef
}

// htmlRef is an incident id, linked when the incident is in the report.
type htmlRef struct {
	ID     int
	Linked bool
}

type htmlOutcomeRow struct {
	Outcome, Attempts, Share, Meaning string
	Anomalous                         bool
}

type htmlIncident struct {
	ID                                            int
	Kind, Severity, SevClass, Server, Span, Title string
	Key                                           []viewKV
	Evidence                                      []string
	Causes                                        []Cause
	Kernel                                        []string
	Samples                                       []htmlSample
	SamplesOmitted                                string
}

type htmlSample struct {
	Heading, Detail string
	Open            bool
	Events          []htmlEvent
	Omitted         int
}

type htmlEvent struct {
	Offset, Dir, DirClass, Flags, Seq, Ack, Len, Win, Note string
}

type htmlAttemptRow struct {
	ID, Start, Client, Server, Outcome, Syns, Synacks, Close, Detail string
}

type htmlSourceRow struct {
	Path, Format, Links, Packets, Bytes, First, Last, Status string
	Bad                                                      bool
}

func newHTMLView(r *Report) *htmlView {
	s := &r.Summary
	v := &htmlView{Title: viewTitle(r), Summary: viewSummary(r), Settings: viewSettings(r), Generator: r.Generator, Kernel: kernelSummaryLines(r.Kernel), LiveNotes: r.Live.Notes()}
	failed := s.Outcomes.Unanswered + s.Outcomes.Refused + s.Outcomes.Abandoned
	v.Stats = []viewKV{
		{"packets", num(s.Packets)},
		{"connection attempts", num(s.Attempts)},
		{"failed (unanswered, refused, abandoned)", num(failed)},
		{"answered only after SYN retransmits", num(s.Outcomes.AnsweredAfterRetransmit)},
		{"incidents", strconv.Itoa(len(r.Incidents))},
	}
	if s.First != "" {
		v.Stats = append(v.Stats, viewKV{"capture span", dur(s.DurationS)})
	}

	d := r.Distributions
	if d == nil {
		d = &Distributions{}
	}
	v.Charts = []svgChart{
		seriesChart(r),
		histChart(&d.HandshakeRTT, "chart-rtt", "chart-rtt", "handshake RTT", "handshakes"),
		histChart(&d.TTFB, "chart-ttfb", "chart-ttfb", "time to first byte", "responses"),
	}

	present := map[int]bool{}
	for _, inc := range r.Incidents {
		present[inc.ID] = true
	}
	for _, row := range r.Verdict.Rows {
		vr := htmlVerdictRow{Category: row.Category, Attempts: num(row.Attempts), Share: viewShare(row.Share), Meaning: row.Meaning, Zero: row.Attempts == 0}
		for _, id := range row.Incidents {
			vr.Incidents = append(vr.Incidents, htmlRef{id, present[id]})
		}
		v.Verdict = append(v.Verdict, vr)
	}
	for x := analyze.Outcome(0); x < analyze.NumOutcomes; x++ {
		n := s.Outcomes.Get(x)
		v.Outcomes = append(v.Outcomes, htmlOutcomeRow{x.String(), num(n), pct(n, s.Attempts), OutcomeHelp[x.String()], x.Anomalous() && n > 0})
	}
	v.OutcomesTotal = htmlOutcomeRow{Outcome: "total", Attempts: num(s.Outcomes.Sum()), Share: pct(s.Outcomes.Sum(), s.Attempts)}
	v.Handshake = "Handshake packets: " + num(s.SynPackets) + " SYN (" + num(s.SynRetransmits) + " retransmitted), " +
		num(s.SynackPackets) + " SYN-ACK (" + num(s.SynackRetransmits) + " retransmitted). Resets after the handshake: " +
		num(s.ResetsAfterHandshake.ByClient) + " by clients, " + num(s.ResetsAfterHandshake.ByServer) + " by servers. Not tracked: " +
		num(s.Duplicates) + " duplicates, " + num(s.Fragments) + " IP fragments, " + num(s.Malformed) + " malformed, " +
		num(s.NonTCP) + " non-TCP; " + num(s.Evicted) + " attempts evicted (table full)."

	for i := range r.Incidents {
		inc := &r.Incidents[i]
		hi := htmlIncident{ID: inc.ID, Kind: inc.Kind, Severity: inc.Severity, SevClass: severityClass(inc.Severity), Server: inc.Server,
			Span: viewSpan(inc.Start, inc.End), Title: inc.Title, Key: viewKeyNumbers(inc), Evidence: inc.Evidence, Causes: inc.Causes, Kernel: kernelLines(inc.Kernel)}
		if inc.SamplesOmitted > 0 {
			hi.SamplesOmitted = num(inc.SamplesOmitted)
		}
		for j := range inc.Samples {
			a := &inc.Samples[j]
			hs := htmlSample{Heading: viewAttemptHeading(a), Detail: Detail(a), Open: j == 0, Omitted: a.TimelineOmitted}
			for k := range a.Timeline {
				e := &a.Timeline[k]
				dc := "dir-client"
				if e.Dir != "client" {
					dc = "dir-server"
				}
				hs.Events = append(hs.Events, htmlEvent{viewOffset(e.OffsetMs), viewDir(e), dc, e.Flags, strconv.FormatUint(uint64(e.Seq), 10),
					strconv.FormatUint(uint64(e.Ack), 10), strconv.FormatUint(uint64(e.Len), 10), strconv.Itoa(int(e.Win)), e.Note})
			}
			hi.Samples = append(hi.Samples, hs)
		}
		v.Incidents = append(v.Incidents, hi)
	}
	if r.IncidentsOmitted > 0 {
		v.IncidentsOmitted = num(r.IncidentsOmitted)
	}

	v.AttemptsTitle = "Anomalous attempts"
	if r.Listing == "all" {
		v.AttemptsTitle = "Attempts"
	}
	v.AttemptsNote = strconv.Itoa(len(r.Attempts)) + " listed"
	if r.AttemptsOmitted > 0 {
		v.AttemptsNote += ", " + num(r.AttemptsOmitted) + " more not listed (raise --max-listed)"
	}
	for i := range r.Attempts {
		a := &r.Attempts[i]
		cl := a.Close
		if a.Close != "none" && a.ClosedBy != "" {
			cl += " by " + a.ClosedBy
		}
		v.Attempts = append(v.Attempts, htmlAttemptRow{strconv.FormatUint(a.ID, 10), shortTime(a.Start), a.Client, a.Server + vlanSuffix(a.VLAN),
			a.Outcome, strconv.Itoa(a.Syns), strconv.Itoa(a.Synacks), cl, Detail(a)})
	}
	for i := range r.Sources {
		src := &r.Sources[i]
		v.Sources = append(v.Sources, htmlSourceRow{src.Path, viewSourceFormat(src), strings.Join(src.LinkTypes, ", "), num(src.Packets),
			num(uint64(max(src.Bytes, 0))), shortTime(src.First), shortTime(src.Last), viewSourceStatus(src), src.Error != "" || src.Anomalies > 0})
	}
	return v
}

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"half": func(n int) int { return n / 2 },
}).Parse(htmlSource))

const htmlSource = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<meta name="generator" content="{{.Generator}}">
<title>{{.Title}}</title>
<style>
:root { --fg: #0f172a; --muted: #475569; --line: #e2e8f0; --bg: #ffffff; --panel: #f8fafc;
  --critical: #b91c1c; --warning: #b45309; --notable: #1d4ed8; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header, main, footer { max-width: 1120px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 24px; }
h1 { font-size: 1.6rem; margin: 0 0 .5rem; word-break: break-word; }
h2 { font-size: 1.3rem; margin: 2.2rem 0 .8rem; padding-bottom: .3rem; border-bottom: 2px solid var(--line); }
h3 { font-size: 1.1rem; margin: 0 0 .4rem; }
h4 { font-size: 1rem; margin: 1rem 0 .4rem; }
p.summary { font-size: 1.02rem; max-width: 75ch; }
.stats { display: flex; flex-wrap: wrap; gap: 12px; list-style: none; padding: 0; margin: 1rem 0; }
.stats li { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px; min-width: 140px; }
.stats .v { display: block; font-size: 1.35rem; font-weight: 650; font-variant-numeric: tabular-nums; }
.stats .k { color: var(--muted); font-size: .85rem; }
nav ul { display: flex; flex-wrap: wrap; gap: 4px 18px; list-style: none; padding: 0; margin: .5rem 0 0; }
a { color: #1d4ed8; }
figure { margin: 0 0 1.6rem; }
figcaption { color: var(--muted); font-size: .9rem; margin-top: .3rem; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1rem; font-size: .9rem; }
th, td { text-align: left; vertical-align: top; padding: 4px 8px; border-bottom: 1px solid var(--line); }
th { background: var(--panel); font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.mono, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85rem; }
tr.zero td { color: var(--muted); }
tr.anomalous td:first-child { font-weight: 600; }
tfoot td { font-weight: 600; }
.wrap { overflow-x: auto; }
.incident { border: 1px solid var(--line); border-left: 6px solid var(--muted); border-radius: 8px; padding: 14px 18px; margin: 0 0 1.2rem; background: #fff; }
.incident.sev-critical { border-left-color: var(--critical); }
.incident.sev-warning { border-left-color: var(--warning); }
.incident.sev-notable { border-left-color: var(--notable); }
.badge { display: inline-block; font-size: .75rem; font-weight: 700; text-transform: uppercase; letter-spacing: .04em;
  padding: 1px 8px; border-radius: 999px; color: #fff; background: var(--muted); vertical-align: middle; }
.badge.sev-critical { background: var(--critical); }
.badge.sev-warning { background: var(--warning); }
.badge.sev-notable { background: var(--notable); }
.incident .title { font-weight: 600; margin: .2rem 0 .6rem; }
.incident .meta { color: var(--muted); font-size: .9rem; }
dl.key { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: .4rem 0 .8rem; font-size: .92rem; }
dl.key dt { color: var(--muted); }
dl.key dd { margin: 0; }
ol.causes li { margin-bottom: .5rem; }
.conf { font-size: .8rem; font-weight: 600; padding: 0 6px; border-radius: 4px; background: var(--panel); border: 1px solid var(--line); }
.conf-high { border-color: var(--critical); color: var(--critical); }
.conf-medium { border-color: var(--warning); color: var(--warning); }
.check { color: var(--muted); }
details { margin: .3rem 0; }
summary { cursor: pointer; font-weight: 600; }
table.timeline { width: auto; min-width: 60%; }
table.timeline tr.dir-server td { background: #f0fdf4; }
table.timeline tr.dir-client td { background: #eff6ff; }
tr.bad td { color: var(--critical); }
footer { color: var(--muted); font-size: .85rem; padding: 24px; }
.chart { display: block; width: 100%; height: auto; font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
.chart text { fill: #334155; font-size: 12px; }
.chart .grid line { stroke: var(--line); }
.chart .axis { stroke: #64748b; stroke-width: 1; }
.chart .hit { fill: transparent; }
.chart .bucket:hover .hit { fill: rgba(15, 23, 42, .06); }
.chart .s-attempts { fill: #cbd5e1; }
.chart .line { fill: none; stroke-width: 2; stroke-linejoin: round; pointer-events: none; }
.chart .line.s-unanswered { stroke: #dc2626; }
.chart .line.s-synrtx { stroke: #ea580c; stroke-dasharray: 6 3; }
.chart .line.s-synackrtx { stroke: #2563eb; stroke-dasharray: 8 3 2 3; }
.chart .line.s-resets { stroke: #7c3aed; stroke-dasharray: 2 3; }
.chart .h-bar { fill: #60a5fa; }
.chart text.count { font-size: 11px; fill: #1e3a8a; }
.chart .q-marker { stroke: #0f172a; stroke-width: 1; stroke-dasharray: 3 3; }
.chart text.qlab { font-size: 11px; fill: #0f172a; font-weight: 600; }
.chart .lane rect { fill-opacity: .28; stroke-width: 1; }
.chart .lane.sev-critical rect { fill: #dc2626; stroke: #b91c1c; }
.chart .lane.sev-warning rect { fill: #f59e0b; stroke: #b45309; }
.chart .lane.sev-notable rect { fill: #3b82f6; stroke: #1d4ed8; }
.chart .lane.sev-other rect { fill: #94a3b8; stroke: #475569; }
.chart .lane text { font-size: 11px; fill: #0f172a; }
.chart .empty-bg { fill: var(--panel); stroke: var(--line); }
.chart text.empty { font-size: 14px; fill: #64748b; }
.chart text.axis-label { fill: var(--muted); font-size: 12px; }
.alert { border-left: 4px solid #b91c1c; padding: .4em .8em; background: #fef2f2; }
@media print { .incident { break-inside: avoid; } details > summary { list-style: none; } }
</style>
</head>
<body>
<header>
<h1>{{.Title}}</h1>
{{range .LiveNotes}}<p class="alert" role="alert"><strong>{{.}}.</strong></p>
{{end}}<p class="summary">{{range $i, $s := .Summary}}{{if $i}} {{end}}{{$s}}{{end}}</p>
<ul class="stats">{{range .Stats}}
<li><span class="v">{{.Value}}</span> <span class="k">{{.Key}}</span></li>{{end}}
</ul>
<nav aria-label="Contents"><ul>
<li><a href="#charts">Charts</a></li>
<li><a href="#verdict">Verdict</a></li>
<li><a href="#outcomes">Outcomes</a></li>
{{if .Kernel}}<li><a href="#kernel">What the kernel saw</a></li>
{{end}}<li><a href="#incidents">Incidents ({{len .Incidents}})</a></li>
<li><a href="#attempts">{{.AttemptsTitle}}</a></li>
<li><a href="#sources">Sources</a></li>
<li><a href="#settings">Settings</a></li>
</ul></nav>
</header>
<main>
<section id="charts" aria-labelledby="charts-h">
<h2 id="charts-h">Charts</h2>
{{range .Charts}}{{template "chart" .}}{{end}}
</section>

<section id="verdict" aria-labelledby="verdict-h">
<h2 id="verdict-h">Verdict: where the failed or slow attempts went</h2>
{{if .Verdict}}<div class="wrap"><table class="verdict">
<thead><tr><th scope="col">where</th><th scope="col" class="n">attempts</th><th scope="col" class="n">share</th><th scope="col">incidents</th><th scope="col">meaning</th></tr></thead>
<tbody>{{range .Verdict}}
<tr{{if .Zero}} class="zero"{{end}}><td>{{.Category}}</td><td class="n">{{.Attempts}}</td><td class="n">{{.Share}}</td><td>{{range $i, $r := .Incidents}}{{if $i}}, {{end}}{{if $r.Linked}}<a href="#incident-{{$r.ID}}">#{{$r.ID}}</a>{{else}}#{{$r.ID}}{{end}}{{end}}</td><td>{{.Meaning}}</td></tr>{{end}}
</tbody></table></div>
{{else}}<p>No verdict in this report.</p>{{end}}
</section>

<section id="outcomes" aria-labelledby="outcomes-h">
<h2 id="outcomes-h">Outcomes</h2>
<div class="wrap"><table class="outcomes">
<thead><tr><th scope="col">outcome</th><th scope="col" class="n">attempts</th><th scope="col" class="n">share</th><th scope="col">meaning</th></tr></thead>
<tbody>{{range .Outcomes}}
<tr{{if .Anomalous}} class="anomalous"{{end}}><td>{{.Outcome}}</td><td class="n">{{.Attempts}}</td><td class="n">{{.Share}}</td><td>{{.Meaning}}</td></tr>{{end}}
</tbody>
<tfoot><tr><td>{{.OutcomesTotal.Outcome}}</td><td class="n">{{.OutcomesTotal.Attempts}}</td><td class="n">{{.OutcomesTotal.Share}}</td><td></td></tr></tfoot>
</table></div>
<p>{{.Handshake}}</p>
</section>

{{if .Kernel}}<section id="kernel" aria-labelledby="kernel-h">
<h2 id="kernel-h">What the kernel saw</h2>
<ul class="kernel">{{range .Kernel}}<li>{{.}}</li>{{end}}</ul>
</section>
{{end}}<section id="incidents" aria-labelledby="incidents-h">
<h2 id="incidents-h">Incidents ({{len .Incidents}})</h2>
{{if .IncidentsOmitted}}<p>{{.IncidentsOmitted}} more incidents were not kept (raise --max-incidents).</p>{{end}}
{{range .Incidents}}
<article class="incident sev-{{.SevClass}}" id="incident-{{.ID}}" aria-labelledby="incident-{{.ID}}-h">
<h3 id="incident-{{.ID}}-h">#{{.ID}} {{.Kind}} <span class="badge sev-{{.SevClass}}">{{.Severity}}</span> <span class="mono">{{.Server}}</span></h3>
<p class="meta">{{.Span}}</p>
<p class="title">{{.Title}}</p>
<dl class="key">{{range .Key}}<dt>{{.Key}}</dt><dd>{{.Value}}</dd>{{end}}</dl>
{{if .Evidence}}<h4>Evidence</h4>
<ul class="evidence">{{range .Evidence}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .Causes}}<h4>Suspected causes, most likely first</h4>
<ol class="causes">{{range .Causes}}
<li>{{.Cause}} <span class="conf conf-{{.Confidence}}">confidence: {{.Confidence}}</span>{{if .Check}}<br><span class="check">check: {{.Check}}</span>{{end}}{{range .Evidence}}<br><span class="check">because: {{.}}</span>{{end}}</li>{{end}}
</ol>{{end}}
{{if .Kernel}}<h4>What the kernel saw</h4>
<ul class="kernel">{{range .Kernel}}<li>{{.}}</li>{{end}}</ul>
{{end}}{{if .Samples}}<h4>Sample attempts</h4>{{end}}
{{range .Samples}}<details class="sample"{{if .Open}} open{{end}}>
<summary>{{.Heading}}</summary>
{{if .Detail}}<p>{{.Detail}}</p>{{end}}
{{if .Events}}<div class="wrap"><table class="timeline">
<caption class="check">packet timeline</caption>
<thead><tr><th scope="col" class="n">offset ms</th><th scope="col">direction</th><th scope="col">flags</th><th scope="col" class="n">seq</th><th scope="col" class="n">ack</th><th scope="col" class="n">len</th><th scope="col" class="n">win</th><th scope="col">note</th></tr></thead>
<tbody>{{range .Events}}
<tr class="{{.DirClass}}"><td class="n">{{.Offset}}</td><td>{{.Dir}}</td><td class="mono">{{.Flags}}</td><td class="n">{{.Seq}}</td><td class="n">{{.Ack}}</td><td class="n">{{.Len}}</td><td class="n">{{.Win}}</td><td>{{.Note}}</td></tr>{{end}}
</tbody></table></div>
{{if .Omitted}}<p>({{.Omitted}} more packets not recorded.)</p>{{end}}
{{else}}<p>No packet timeline recorded.</p>{{end}}
</details>
{{end}}{{if .SamplesOmitted}}<p>{{.SamplesOmitted}} more attempts in this incident are not shown.</p>{{end}}
</article>
{{else}}<p class="none">No incidents.</p>
{{end}}
</section>

<section id="attempts" aria-labelledby="attempts-h">
<h2 id="attempts-h">{{.AttemptsTitle}} ({{.AttemptsNote}})</h2>
{{if .Attempts}}<div class="wrap"><table class="attempts">
<thead><tr><th scope="col" class="n">id</th><th scope="col">start</th><th scope="col">client</th><th scope="col">server</th><th scope="col">outcome</th><th scope="col" class="n">syn</th><th scope="col" class="n">syn-ack</th><th scope="col">close</th><th scope="col">detail</th></tr></thead>
<tbody>{{range .Attempts}}
<tr><td class="n">{{.ID}}</td><td class="n">{{.Start}}</td><td class="mono">{{.Client}}</td><td class="mono">{{.Server}}</td><td>{{.Outcome}}</td><td class="n">{{.Syns}}</td><td class="n">{{.Synacks}}</td><td>{{.Close}}</td><td>{{.Detail}}</td></tr>{{end}}
</tbody></table></div>
{{else}}<p>None.</p>{{end}}
</section>

<section id="sources" aria-labelledby="sources-h">
<h2 id="sources-h">Sources</h2>
<div class="wrap"><table class="sources">
<thead><tr><th scope="col">source</th><th scope="col">format</th><th scope="col">link types</th><th scope="col" class="n">packets</th><th scope="col" class="n">bytes</th><th scope="col">first</th><th scope="col">last</th><th scope="col">status</th></tr></thead>
<tbody>{{range .Sources}}
<tr{{if .Bad}} class="bad"{{end}}><td class="mono">{{.Path}}</td><td>{{.Format}}</td><td>{{.Links}}</td><td class="n">{{.Packets}}</td><td class="n">{{.Bytes}}</td><td class="n">{{.First}}</td><td class="n">{{.Last}}</td><td>{{.Status}}</td></tr>{{end}}
</tbody></table></div>
</section>

<section id="settings" aria-labelledby="settings-h">
<h2 id="settings-h">Settings</h2>
<div class="wrap"><table class="settings">
<thead><tr><th scope="col">setting</th><th scope="col">value</th></tr></thead>
<tbody>{{range .Settings}}
<tr><td>{{.Key}}</td><td>{{.Value}}</td></tr>{{end}}
</tbody></table></div>
</section>
</main>
<footer>Generated by {{.Generator}}. This page is self-contained: it loads nothing from the network and runs no scripts.</footer>
</body>
</html>
{{define "chart"}}<figure id="{{.ID}}">
<svg class="{{.Class}}" viewBox="0 0 {{.W}} {{.H}}" role="img" aria-labelledby="{{.ID}}-title {{.ID}}-desc">
<title id="{{.ID}}-title">{{.Title}}</title>
<desc id="{{.ID}}-desc">{{.Desc}}</desc>
{{if .Empty}}<rect class="empty-bg" x="{{.EmptyBg.X}}" y="{{.EmptyBg.Y}}" width="{{.EmptyBg.W}}" height="{{.EmptyBg.H}}" rx="6"></rect>
<text class="empty" x="{{half .W}}" y="{{half .H}}" text-anchor="middle" dominant-baseline="middle">{{.Empty}}</text>
{{else}}<g class="grid">{{range .YTicks}}<line x1="{{.X1}}" y1="{{.Y1}}" x2="{{.X2}}" y2="{{.Y2}}"></line><text x="{{.LX}}" y="{{.LY}}" text-anchor="end">{{.Label}}</text>{{end}}</g>
<g class="buckets">{{range .Buckets}}<g class="bucket"><title>{{.Tip}}</title><rect class="hit" x="{{.Hit.X}}" y="{{.Hit.Y}}" width="{{.Hit.W}}" height="{{.Hit.H}}"></rect>{{range .Bars}}<rect class="{{.Class}}" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"></rect>{{end}}{{if .Label}}<text class="count" x="{{.LX}}" y="{{.LY}}" text-anchor="middle">{{.Label}}</text>{{end}}</g>
{{end}}</g>
{{range .Lines}}<polyline class="line {{.Class}}" points="{{.Points}}"></polyline>
{{end}}<line class="axis" x1="{{.Plot.X}}" y1="{{.Plot.Y}}" x2="{{.Plot.X}}" y2="{{(index .YTicks 0).Y1}}"></line>
<line class="axis" x1="{{(index .YTicks 0).X1}}" y1="{{(index .YTicks 0).Y1}}" x2="{{(index .YTicks 0).X2}}" y2="{{(index .YTicks 0).Y2}}"></line>
<g class="xaxis">{{range .XTicks}}<line class="axis" x1="{{.X1}}" y1="{{.Y1}}" x2="{{.X2}}" y2="{{.Y2}}"></line>{{if .Label}}<text x="{{.LX}}" y="{{.LY}}" text-anchor="{{.Anchor}}">{{.Label}}</text>{{end}}{{end}}</g>
{{range .Markers}}<line class="{{.Class}}" x1="{{.X}}" y1="{{.Y1}}" x2="{{.X}}" y2="{{.Y2}}"></line><text class="qlab" x="{{.LX}}" y="{{.LY}}" text-anchor="{{.Anchor}}">{{.Label}}</text>
{{end}}<g class="legend">{{range .Legend}}{{if .IsBar}}<rect class="{{.Class}}" x="{{.Swatch.X}}" y="{{.Swatch.Y}}" width="{{.Swatch.W}}" height="{{.Swatch.H}}"></rect>{{else}}<line class="line {{.Class}}" x1="{{.LX1}}" y1="{{.LY}}" x2="{{.LX2}}" y2="{{.LY}}"></line>{{end}}<text x="{{.TX}}" y="{{.TY}}">{{.Label}}</text>{{end}}</g>
{{range .Lanes}}<a href="{{.Href}}"><g class="{{.Class}}"><title>{{.Tip}}</title><rect x="{{.Bar.X}}" y="{{.Bar.Y}}" width="{{.Bar.W}}" height="{{.Bar.H}}" rx="2"></rect><text x="{{.LX}}" y="{{.LY}}" text-anchor="{{.Anchor}}">{{.Label}}</text></g></a>
{{end}}{{range .Notes}}<text class="axis-label" x="{{.X}}" y="{{.Y}}" text-anchor="{{.Anchor}}">{{.Text}}</text>{{end}}
<text class="axis-label" x="{{.XLabel.X}}" y="{{.XLabel.Y}}" text-anchor="{{.XLabel.Anchor}}">{{.XLabel.Text}}</text>
<text class="axis-label" x="{{.YLabel.X}}" y="{{.YLabel.Y}}" text-anchor="{{.YLabel.Anchor}}" transform="{{.YLabel.Transform}}">{{.YLabel.Text}}</text>
{{end}}</svg>
<figcaption>{{.Caption}}</figcaption>
</figure>
{{end}}`
