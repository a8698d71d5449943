package report

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"image"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func renderHTML(t *testing.T, r *Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// chartClasses are the charts every report has, in order.
var chartClasses = []string{"chart-series", "chart-rtt", "chart-ttfb"}

// svgClasses lists the class attribute of every <svg> element.
func svgClasses(doc string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`<svg\b[^>]*?\bclass="([^"]*)"`).FindAllStringSubmatch(doc, -1) {
		out = append(out, m[1])
	}
	return out
}

// checkSelfContained fails on anything that would make a browser fetch or
// run something: scripts, event handlers, URLs, and references (src, href,
// CSS url() or @import) to anything but the page's own fragments.
func checkSelfContained(t *testing.T, doc string) {
	t.Helper()
	lower := strings.ToLower(doc)
	for _, bad := range []string{"<script", "http://", "https://", "//www.", "url(", "@import", "javascript:", "<link", "<img", "<iframe", "<object", "<embed", "srcset"} {
		if strings.Contains(lower, bad) {
			i := strings.Index(lower, bad)
			t.Errorf("HTML contains %q: ...%s...", bad, doc[max(0, i-60):min(len(doc), i+60)])
		}
	}
	if m := regexp.MustCompile(`(?i)<[^>]*\son[a-z]+\s*=\s*["']`).FindString(doc); m != "" {
		t.Errorf("HTML has an event handler attribute %q", m)
	}
	ids := map[string]bool{}
	for _, m := range regexp.MustCompile(`\sid="([^"]*)"`).FindAllStringSubmatch(doc, -1) {
		if ids[m[1]] {
			t.Errorf("duplicate id %q", m[1])
		}
		ids[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`(?i)\s(src|href|xlink:href|action|poster|data)\s*=\s*"([^"]*)"`).FindAllStringSubmatch(doc, -1) {
		if !strings.HasPrefix(m[2], "#") {
			t.Errorf("%s=%q refers outside the page", m[1], m[2])
		} else if !ids[m[2][1:]] {
			t.Errorf("%s=%q: no element has that id", m[1], m[2])
		}
	}
	if !strings.Contains(doc, `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`) {
		t.Error("no Content-Security-Policy forbidding loads")
	}
}

// checkSVGWellFormed parses every inline <svg> as XML: an unclosed or
// misnested element would show up here.
func checkSVGWellFormed(t *testing.T, doc string) {
	t.Helper()
	for i, frag := range regexp.MustCompile(`(?s)<svg\b.*?</svg>`).FindAllString(doc, -1) {
		d := xml.NewDecoder(strings.NewReader(frag))
		titles := 0
		for {
			tok, err := d.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Errorf("svg %d is not well-formed: %v", i, err)
				break
			}
			if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "title" {
				titles++
			}
		}
		if titles == 0 {
			t.Errorf("svg %d has no <title>", i)
		}
	}
}

func TestHTMLStructure(t *testing.T) {
	r := fixtureReport()
	doc := renderHTML(t, r)
	if !strings.HasPrefix(doc, "<!DOCTYPE html>\n<html lang=\"en\">") {
		t.Errorf("document start: %q", doc[:min(60, len(doc))])
	}
	for _, want := range []string{
		"<title>synscope report: edge-lb-2026-03-01.pcapng</title>",
		`<h1>synscope report: edge-lb-2026-03-01.pcapng</h1>`,
		"Main failure (incident #1, critical): 37 connection attempts",
		`<h2 id="verdict-h">Verdict: where the failed or slow attempts went</h2>`,
		`<td>lost_in_handshake</td><td class="n">37</td><td class="n">2.0%</td><td><a href="#incident-1">#1</a></td>`,
		`<h2 id="incidents-h">Incidents (5)</h2>`,
		`<dt>retransmit schedule</dt><dd>0, 1, 3, 7 s</dd>`,
		`<dt>by side</dt><dd>client 1, server 6</dd>`,
		`<li>29 clients affected</li>`,
		`<span class="conf conf-medium">confidence: medium</span><br><span class="check">check: on the server: nft list ruleset`,
		`<tr class="dir-client"><td class="n">0.000</td><td>client→server</td><td class="mono">S</td><td class="n">1804289383</td>`,
		`<tr class="dir-server"><td class="n">0.520</td><td>network→client</td><td class="mono">icmp 3/13</td>`,
		`<h2 id="attempts-h">Anomalous attempts (6 listed)</h2>`,
		`<tr class="bad"><td class="mono">captures/edge-lb-2026-03-01.pcapng</td>`,
		`<td>SYN timeout (--syn-timeout)</td><td>3s</td>`,
		// Chart labels: time ticks, legend totals, histogram bounds and percentiles.
		`>10:00:15</text>`, `>unanswered SYNs (39)</text>`, `>SYN retransmits (`, `>SYN-ACK retransmits (4)</text>`,
		`>p50 1.4 ms</text>`, `>p99 48.5 ms</text>`, `>60 s</text>`,
		`<a href="#incident-3"><g class="lane sev-warning"><title>#3 reset 10.1.2.4:8443, warning, 2026-03-01 10:01:04.000 to 10:01:40.300 UTC</title>`,
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	for _, inc := range r.Incidents {
		id := strconv.Itoa(inc.ID)
		if !strings.Contains(doc, `<article class="incident sev-`+inc.Severity+`" id="incident-`+id+`"`) {
			t.Errorf("no section for incident #%s", id)
		}
		for _, a := range inc.Samples {
			if !strings.Contains(doc, "<summary>Attempt "+strconv.FormatUint(a.ID, 10)+": ") {
				t.Errorf("incident #%s: no sample attempt %d", id, a.ID)
			}
		}
	}
	samples, events := 0, 0
	for _, inc := range r.Incidents {
		for _, a := range inc.Samples {
			samples++
			events += len(a.Timeline)
		}
	}
	if got := strings.Count(doc, `<table class="timeline">`); got != samples {
		t.Errorf("%d timeline tables, want %d", got, samples)
	}
	if got := strings.Count(doc, `<tr class="dir-`); got != events {
		t.Errorf("%d timeline rows, want %d", got, events)
	}
	attempts := regexp.MustCompile(`(?s)<table class="attempts">.*?</table>`).FindString(doc)
	if got := strings.Count(attempts, "<tr>") - 1; got != len(r.Attempts) { // less the header row
		t.Errorf("%d attempt rows, want %d", got, len(r.Attempts))
	}
	if got := svgClasses(doc); strings.Join(got, ";") != "chart chart-series;chart chart-rtt;chart chart-ttfb" {
		t.Errorf("svg classes %q", got)
	}
	if got := strings.Count(doc, "<figcaption>"); got != 3 {
		t.Errorf("%d figcaptions, want 3", got)
	}
	// The series chart: one bucket per series entry, one line per failure series.
	series := regexp.MustCompile(`(?s)<svg class="chart chart-series".*?</svg>`).FindString(doc)
	if got := strings.Count(series, `<g class="bucket">`); got != len(r.Series.Attempts) {
		t.Errorf("series chart has %d buckets, want %d", got, len(r.Series.Attempts))
	}
	if got := strings.Count(series, "<polyline "); got != 4 {
		t.Errorf("series chart has %d lines, want 4", got)
	}
	if got := strings.Count(series, `<g class="lane `); got != len(r.Incidents) {
		t.Errorf("series chart has %d incident lanes, want %d", got, len(r.Incidents))
	}
	checkSelfContained(t, doc)
	checkSVGWellFormed(t, doc)
	if again := renderHTML(t, fixtureReport()); again != doc {
		t.Error("HTML output is not deterministic")
	}
}

func TestHTMLEscaping(t *testing.T) {
	doc := renderHTML(t, hostileReport())
	if strings.Contains(strings.ToLower(doc), "<script") {
		t.Errorf("unescaped <script> in HTML")
	}
	for _, want := range []string{
		`<span class="mono">&lt;script&gt;alert(1)&lt;/script&gt;a|b</span>`,
		`<p class="title">title a|b &lt;script&gt;alert(1)&lt;/script&gt; *bold* [link](x) `,
		`<td>meaning a|b &lt;script&gt;alert(1)&lt;/script&gt;</td>`,
		`<title>synscope report: script&gt;.pcapng</title>`,
		`class="conf conf-high&#34; onmouseover=&#34;alert(1)"`,
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	checkSelfContained(t, doc)
	checkSVGWellFormed(t, doc)
}

func TestHTMLEmpty(t *testing.T) {
	doc := renderHTML(t, &Report{Schema: Schema, Generator: "synscope test"})
	for _, want := range []string{"<title>synscope report</title>", `<p class="none">No incidents.</p>`, "No per-interval counts in this report.",
		"No handshake RTT measured", "No time to first byte measured", "No incidents: no failed or slow handshakes were found."} {
		if !strings.Contains(doc, want) {
			t.Errorf("empty report HTML lacks %q", want)
		}
	}
	want := "chart chart-series chart-empty;chart chart-rtt chart-empty;chart chart-ttfb chart-empty"
	if got := svgClasses(doc); strings.Join(got, ";") != want {
		t.Errorf("svg classes %q, want %q", got, want)
	}
	checkSelfContained(t, doc)
	checkSVGWellFormed(t, doc)

	// Odd shapes a hand-edited JSON file may have must not break rendering.
	r := fixtureReport()
	r.Series.SynRetransmits = r.Series.SynRetransmits[:10]
	r.Series.BucketS = 0
	r.Series.Start = "not a time"
	r.Distributions.HandshakeRTT.Bounds = nil
	r.Distributions.TTFB.Counts = []uint64{5}
	r.Incidents[0].Start = ""
	doc = renderHTML(t, r)
	checkSelfContained(t, doc)
	checkSVGWellFormed(t, doc)
}

// chromiumArgs are the flags of every headless run: no sandbox (tests may
// run as root), nothing that talks to the network on its own, a private
// profile, and logging on stderr so the page's console messages show.
func chromiumArgs(profile string, extra ...string) []string {
	return append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + profile, "--enable-logging=stderr", "--v=0"}, extra...)
}

// pageProblems returns the lines of Chromium's stderr that concern the page.
//
// Chromium logs a lot that has nothing to do with the page: D-Bus is absent
// in containers (dbus/bus.cc, dbus/object_proxy.cc ERROR lines), there is
// no GPU (vaapi, gpu-process sandbox WARNINGs), no bluetooth, no screensaver
// service, and /usr/bin/chromium's wrapper script may complain. Rather than
// list that noise (it varies by version and host), we keep what is about
// the page:
//   - every console message: Chromium logs them as "...:CONSOLE:<line>]" (or
//     "CONSOLE(<line>)]" in older versions) — console.log/error calls,
//     uncaught exceptions, and Content-Security-Policy violations, i.e. any
//     attempt to load something, which the page's CSP forbids;
//   - any ERROR or FATAL line that names the page's file.
func pageProblems(stderr, page string) []string {
	var out []string
	base := filepath.Base(page)
	for _, line := range strings.Split(stderr, "\n") {
		switch {
		case strings.Contains(line, ":CONSOLE"):
			out = append(out, line)
		case (strings.Contains(line, ":ERROR:") || strings.Contains(line, ":FATAL:")) && strings.Contains(line, base):
			out = append(out, line)
		}
	}
	return out
}

// runChromium runs headless Chromium on page with the given extra flags and
// returns stdout and stderr. It never sleeps: the context bounds the run.
func runChromium(t *testing.T, bin, page string, extra ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := chromiumArgs(t.TempDir(), append(extra, "file://"+page)...)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	t.Logf("chromium %s: %v", extra[0], time.Since(start).Round(time.Millisecond))
	if ctx.Err() != nil {
		t.Fatalf("chromium timed out after 60 s; stderr:\n%s", stderr.String())
	}
	if err != nil {
		t.Fatalf("chromium: %v; stderr:\n%s", err, stderr.String())
	}
	return stdout.String(), stderr.String()
}

// TestHTMLChromium loads the fixture's HTML in headless Chromium: the DOM it
// builds must hold the three charts and the incidents, the page must log
// nothing to the console (no errors, no blocked loads), and a screenshot
// must show something.
func TestHTMLChromium(t *testing.T) {
	const bin = "/usr/bin/chromium"
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("headless browser test skipped: %s not found (apt-get install chromium, or `make deps`)", bin)
	}
	if testing.Short() {
		t.Skip("headless browser test skipped in -short mode")
	}
	r := fixtureReport()
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, []byte(renderHTML(t, r)), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("dom", func(t *testing.T) {
		dom, stderr := runChromium(t, bin, page, "--dump-dom")
		if p := pageProblems(stderr, page); len(p) > 0 {
			t.Errorf("Chromium reported problems with the page:\n%s", strings.Join(p, "\n"))
		}
		for _, class := range chartClasses {
			n := len(regexp.MustCompile(`<svg\b[^>]*\bclass="chart `+class+`"`).FindAllString(dom, -1))
			if n != 1 {
				t.Errorf("DOM has %d <svg> with class %q, want 1", n, "chart "+class)
			}
		}
		if n := strings.Count(dom, "<svg"); n != len(chartClasses) {
			t.Errorf("DOM has %d <svg>, want %d", n, len(chartClasses))
		}
		if n := strings.Count(dom, "<figcaption>"); n != len(chartClasses) {
			t.Errorf("DOM has %d <figcaption>, want %d", n, len(chartClasses))
		}
		for _, inc := range r.Incidents {
			if !strings.Contains(dom, `id="incident-`+strconv.Itoa(inc.ID)+`"`) {
				t.Errorf("DOM lacks incident #%d", inc.ID)
			}
		}
		if n := strings.Count(dom, `<table class="timeline">`); n != 6 {
			t.Errorf("DOM has %d timeline tables, want 6", n)
		}
		if !strings.Contains(dom, "<title>synscope report: edge-lb-2026-03-01.pcapng</title>") {
			t.Error("DOM lacks the page title")
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		shot := filepath.Join(t.TempDir(), "shot.png")
		_, stderr := runChromium(t, bin, page, "--screenshot="+shot, "--window-size=1280,2000", "--hide-scrollbars")
		if p := pageProblems(stderr, page); len(p) > 0 {
			t.Errorf("Chromium reported problems with the page:\n%s", strings.Join(p, "\n"))
		}
		data, err := os.ReadFile(shot)
		if err != nil {
			t.Fatalf("no screenshot: %v", err)
		}
		if len(data) < 20_000 {
			t.Errorf("screenshot is only %d bytes", len(data))
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("screenshot does not decode: %v", err)
		}
		if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 2000 {
			t.Errorf("screenshot is %dx%d, want 1280x2000", b.Dx(), b.Dy())
		}
		if n := distinctColours(img); n < 16 {
			t.Errorf("screenshot has %d distinct colours: blank page?", n)
		}
	})

	// The filter must not be blind: the same page with a script that logs an
	// error and an image it may not load has to be caught.
	t.Run("filter-catches-problems", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.html")
		doc := strings.Replace(renderHTML(t, r), "<body>", `<body><img src="missing.png" alt=""><script>console.error("boom")</script>`, 1)
		if err := os.WriteFile(bad, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		_, stderr := runChromium(t, bin, bad, "--dump-dom")
		p := strings.Join(pageProblems(stderr, bad), "\n")
		if !strings.Contains(p, "missing.png") || !strings.Contains(p, "Content Security Policy") {
			t.Errorf("the blocked image load was not caught; problems:\n%s", p)
		}
		if !strings.Contains(p, "script") {
			t.Errorf("the blocked inline script was not caught; problems:\n%s", p)
		}
	})
}

// distinctColours counts the colours on a grid of samples.
func distinctColours(img image.Image) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
		}
	}
	return len(seen)
}
