package report

// Chart geometry for the HTML report. The charts are inline SVG laid out
// here in Go and written by html/template (so every label is escaped); they
// need no JavaScript, fonts or images. Coordinates are in the SVG's viewBox
// units and formatted with one decimal, so output is deterministic.

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// svgChart is one chart. When Empty is set the chart is an empty-state
// panel showing that message.
type svgChart struct {
	Class   string // CSS classes of the <svg>: "chart chart-series", ...
	ID      string // prefix of the ids of its <title> and <desc>
	Title   string // SVG <title>: what the chart shows
	Desc    string // SVG <desc>: the numbers in words
	Caption string // the figure's caption
	W, H    int
	Empty   string
	EmptyBg svgBox // the empty-state panel

	Plot    svgBox // the plot area (for the frame)
	YTicks  []svgTick
	XTicks  []svgTick
	Buckets []svgBucket
	Lines   []svgLine
	Markers []svgMarker
	Lanes   []svgLane
	Legend  []svgLegend
	XLabel  svgText
	YLabel  svgText
	Notes   []svgText
}

type svgBox struct{ X, Y, W, H string }

// svgTick is an axis tick: a grid line (or tick mark) and its label.
type svgTick struct {
	X1, Y1, X2, Y2 string // the line
	LX, LY         string // the label's anchor
	Anchor         string // text-anchor of an x-axis label
	Label          string
}

// svgBucket is one bucket: a hover area with a tooltip, and its bars.
type svgBucket struct {
	Tip  string
	Hit  svgBox
	Bars []svgBar
	// Label is drawn above the bar (histogram counts); empty for none.
	Label, LX, LY string
}

type svgBar struct {
	Class string
	svgBox
}

type svgLine struct {
	Class  string
	Points string
}

// svgMarker is a vertical line with a label (a percentile).
type svgMarker struct {
	Class          string
	X, Y1, Y2      string
	LX, LY, Anchor string
	Label          string
}

// svgLane is one incident's time span, under the series chart.
type svgLane struct {
	Class, Tip     string
	Bar            svgBox
	LX, LY, Anchor string
	Label          string
	Href           string // "#incident-N"
}

type svgLegend struct {
	Class        string
	IsBar        bool
	Swatch       svgBox // bar swatch
	LX1, LX2, LY string
	TX, TY       string
	Label        string
}

type svgText struct {
	X, Y, Anchor, Text string
	Transform          string
}

func f1(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', 1, 64)
}

func box(x, y, w, h float64) svgBox {
	return svgBox{f1(x), f1(y), f1(math.Max(w, 0)), f1(math.Max(h, 0))}
}

// niceStep is a 1-2-5 step giving at most maxTicks steps up to max.
func niceStep(max float64, maxTicks int) float64 {
	if max <= 0 {
		return 1
	}
	raw := max / float64(maxTicks)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			return math.Max(m*mag, 1) // counts: steps of at least 1
		}
	}
	return 10 * mag
}

// maxTicksDrawn bounds the ticks of any axis.
const maxTicksDrawn = 64

// yAxis returns the axis maximum and its ticks for counts up to max.
func yAxis(max float64, left, right, top, bottom float64) (float64, []svgTick) {
	step := niceStep(max, 5)
	top2 := math.Max(step, math.Ceil(max/step)*step)
	var ticks []svgTick
	// Bounded: a saved report is untrusted input, and float steps that no
	// longer move the value must not loop forever.
	for v, i := 0.0, 0; v <= top2+step/2 && i < maxTicksDrawn; v, i = v+step, i+1 {
		y := bottom - v/top2*(bottom-top)
		ticks = append(ticks, svgTick{X1: f1(left), Y1: f1(y), X2: f1(right), Y2: f1(y), LX: f1(left - 6), LY: f1(y + 4), Label: num(uint64(v))})
	}
	return top2, ticks
}

// legendItems lays out legend entries left to right from x at baseline y.
func legendItems(x, y float64, items []svgLegend) []svgLegend {
	for i := range items {
		it := &items[i]
		if it.IsBar {
			it.Swatch = box(x, y-9, 14, 10)
		} else {
			it.LX1, it.LX2, it.LY = f1(x), f1(x+18), f1(y-4)
		}
		it.TX, it.TY = f1(x+22), f1(y)
		x += 22 + 6.6*float64(len([]rune(it.Label))) + 18
	}
	return items
}

var seriesSpecs = []struct {
	class, label string
	get          func(*Series) []uint64
	bar          bool
	optional     bool // only drawn when it has counts
}{
	{"s-attempts", "attempts", func(s *Series) []uint64 { return s.Attempts }, true, false},
	{"s-unanswered", "unanswered SYNs", func(s *Series) []uint64 { return s.Unanswered }, false, false},
	{"s-synrtx", "SYN retransmits", func(s *Series) []uint64 { return s.SynRetransmits }, false, false},
	{"s-synackrtx", "SYN-ACK retransmits", func(s *Series) []uint64 { return s.SynackRetransmits }, false, true},
	{"s-resets", "resets", func(s *Series) []uint64 { return s.Resets }, false, false},
}

func at(v []uint64, i int) uint64 {
	if i < len(v) {
		return v[i]
	}
	return 0
}

func sum(v []uint64) uint64 {
	var n uint64
	for _, x := range v {
		n += x
	}
	return n
}

const maxLanes = 12

// seriesChart draws the per-bucket counts as bars (attempts) and step lines
// (failures), with time labels, a legend, and a lane per incident below.
func seriesChart(r *Report) svgChart {
	c := svgChart{Class: "chart chart-series", ID: "chart-series", W: 960,
		Title: "Connection attempts and failures over time"}
	s := r.Series
	if s == nil || len(s.Attempts) == 0 {
		c.Class += " chart-empty"
		c.H = 70
		c.EmptyBg = box(1, 1, float64(c.W-2), float64(c.H-2))
		c.Empty = "No per-interval counts in this report."
		c.Desc = c.Empty
		c.Caption = "Attempts, unanswered SYNs, SYN retransmits and resets over time: no data."
		return c
	}
	n := len(s.Attempts)
	bucketS := s.BucketS
	if bucketS <= 0 || math.IsNaN(bucketS) || math.IsInf(bucketS, 0) {
		bucketS = 1
	}
	spanS := float64(n) * bucketS
	const left, right, top = 56.0, 944.0, 40.0
	const bottom = top + 220
	pw := right - left
	xOf := func(off float64) float64 { return left + math.Max(0, math.Min(off, spanS))/spanS*pw }

	// Which series are drawn, and the y scale over all of them.
	type drawn struct {
		class, label string
		v            []uint64
		bar          bool
	}
	var ds []drawn
	var maxV uint64
	for _, sp := range seriesSpecs {
		v := sp.get(s)
		if sp.optional && sum(v) == 0 {
			continue
		}
		ds = append(ds, drawn{sp.class, sp.label, v, sp.bar})
		for i := 0; i < n; i++ {
			maxV = max(maxV, at(v, i))
		}
	}
	yMax, yt := yAxis(float64(maxV), left, right, top, bottom)
	c.YTicks = yt
	yOf := func(v uint64) float64 { return bottom - float64(v)/yMax*(bottom-top) }

	start, startOK := parseTime(s.Start)
	bw := pw / float64(n)
	gap := math.Min(1, bw/4)
	for i := 0; i < n; i++ {
		x := left + float64(i)*bw
		b := svgBucket{Hit: box(x, top, bw, bottom-top)}
		var tip []string
		for _, d := range ds {
			tip = append(tip, num(at(d.v, i))+" "+d.label)
			if d.bar && at(d.v, i) > 0 {
				y := yOf(at(d.v, i))
				b.Bars = append(b.Bars, svgBar{d.class, box(x+gap/2, y, bw-gap, bottom-y)})
			}
		}
		b.Tip = bucketTime(start, startOK, float64(i)*bucketS, bucketS) + ": " + strings.Join(tip, ", ")
		c.Buckets = append(c.Buckets, b)
	}
	var legend []svgLegend
	var totals []string
	for _, d := range ds {
		legend = append(legend, svgLegend{Class: d.class, IsBar: d.bar, Label: d.label + " (" + num(sum(d.v)) + ")"})
		totals = append(totals, num(sum(d.v))+" "+d.label)
		if d.bar {
			continue
		}
		var pts strings.Builder
		for i := 0; i < n; i++ {
			y := f1(yOf(at(d.v, i)))
			x0, x1 := left+float64(i)*bw, left+float64(i+1)*bw
			pts.WriteString(f1(x0) + "," + y + " " + f1(x1) + "," + y + " ")
		}
		c.Lines = append(c.Lines, svgLine{Class: d.class, Points: strings.TrimSpace(pts.String())})
	}
	c.Legend = legendItems(left, 20, legend)

	// Time ticks: a round step giving at most 8 labels, at round times.
	step := timeStep(spanS)
	first := 0.0
	if startOK {
		epoch := float64(start.UnixNano()) / 1e9
		first = math.Ceil(epoch/step)*step - epoch
	}
	for off, i := first, 0; off <= spanS+1e-9 && i < maxTicksDrawn; off, i = off+step, i+1 {
		if off < 0 {
			continue
		}
		x := xOf(off)
		t := svgTick{X1: f1(x), Y1: f1(bottom), X2: f1(x), Y2: f1(bottom + 5), LX: f1(x), LY: f1(bottom + 18), Anchor: "middle",
			Label: tickTime(start, startOK, off, step)}
		if x > right-30 { // keep the last label inside the chart
			t.Anchor = "end"
		}
		c.XTicks = append(c.XTicks, t)
	}
	c.Plot = box(left, top, pw, bottom-top)
	bucketText := strings.TrimSuffix(strings.TrimRight(strconv.FormatFloat(bucketS, 'f', 3, 64), "0"), ".") + " s"
	from := ""
	if startOK {
		from = " from " + start.Format("2006-01-02 15:04:05") + " UTC"
	}
	c.XLabel = svgText{X: f1(left + pw/2), Y: f1(bottom + 36), Anchor: "middle", Text: "time (UTC), " + bucketText + " buckets" + from}
	c.YLabel = svgText{X: "14", Y: f1(top + (bottom-top)/2), Anchor: "middle", Text: "per " + bucketText,
		Transform: "rotate(-90 14 " + f1(top+(bottom-top)/2) + ")"}

	// Incident lanes.
	y := bottom + 50
	for i := range r.Incidents {
		if i == maxLanes {
			c.Notes = append(c.Notes, svgText{X: f1(left), Y: f1(y + 10), Anchor: "start",
				Text: "+" + strconv.Itoa(len(r.Incidents)-maxLanes) + " more incidents (listed below)"})
			y += 18
			break
		}
		inc := &r.Incidents[i]
		a, okA := parseTime(inc.Start)
		b, okB := parseTime(inc.End)
		x0, x1 := left, left+pw
		if okA && okB && startOK {
			x0, x1 = xOf(a.Sub(start).Seconds()), xOf(b.Sub(start).Seconds())
		}
		if x1-x0 < 3 {
			x1 = math.Min(x0+3, right)
			x0 = x1 - 3
		}
		label := "#" + strconv.Itoa(inc.ID) + " " + inc.Kind + " " + inc.Server
		lane := svgLane{Class: "lane sev-" + severityClass(inc.Severity), Tip: label + ", " + inc.Severity + ", " + viewSpan(inc.Start, inc.End),
			Bar: box(x0, y, x1-x0, 12), LY: f1(y + 10), Label: label, Href: "#incident-" + strconv.Itoa(inc.ID)}
		if x0 > left+0.65*pw {
			lane.LX, lane.Anchor = f1(x1-4), "end"
		} else {
			lane.LX, lane.Anchor = f1(x0+4), "start"
		}
		c.Lanes = append(c.Lanes, lane)
		y += 18
	}
	if len(r.Incidents) > 0 {
		c.Notes = append(c.Notes, svgText{X: f1(left), Y: f1(bottom + 44), Anchor: "start", Text: "incidents:"})
	}
	c.H = int(y + 8)
	c.Desc = "Per-" + bucketText + " counts over " + strconv.Itoa(n) + " buckets" + from + ", peak " + num(maxV) + " per bucket; in all " + strings.Join(totals, ", ") + "."
	if len(r.Incidents) > 0 {
		c.Desc += " Below the chart, one lane per incident shows its time span."
	}
	c.Caption = "Attempts (bars) and failures (lines) per " + bucketText + " across the capture; " + strings.Join(totals, ", ") + "."
	return c
}

func severityClass(s string) string {
	switch s {
	case "critical", "warning", "notable":
		return s
	}
	return "other"
}

func parseTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

var timeSteps = []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400}

func timeStep(spanS float64) float64 {
	for _, s := range timeSteps {
		if spanS/s <= 8 {
			return s
		}
	}
	return math.Ceil(spanS/8/86400) * 86400
}

// tickTime labels a time tick: the clock time when the start is known
// (with the date at day steps), else the offset.
func tickTime(start time.Time, ok bool, off, step float64) string {
	if !ok {
		return "+" + strings.TrimSuffix(strings.TrimRight(strconv.FormatFloat(off, 'f', 3, 64), "0"), ".") + " s"
	}
	t := start.Add(time.Duration(math.Round(off * 1e9)))
	switch {
	case step >= 86400:
		return t.Format("01-02")
	case step >= 60:
		return t.Format("15:04")
	case step >= 1:
		return t.Format("15:04:05")
	}
	return t.Format("15:04:05.000")
}

func bucketTime(start time.Time, ok bool, off, width float64) string {
	if !ok {
		return tickTime(start, ok, off, width)
	}
	f := "15:04:05"
	if width < 1 {
		f = "15:04:05.000"
	}
	return start.Add(time.Duration(math.Round(off*1e9))).Format(f) + "–" + start.Add(time.Duration(math.Round((off+width)*1e9))).Format(f)
}

// boundLabel formats a histogram bound: ms below a second, s above.
func boundLabel(ms float64) string {
	trim := func(v float64) string {
		return strings.TrimSuffix(strings.TrimRight(strconv.FormatFloat(v, 'f', 3, 64), "0"), ".")
	}
	if ms >= 1000 {
		return trim(ms/1000) + " s"
	}
	return trim(ms) + " ms"
}

// histChart draws a histogram over its bucket bounds (log-spaced, drawn
// with equal widths), with count labels and p50/p90/p99 markers.
func histChart(h *Histogram, class, id, what, of string) svgChart {
	c := svgChart{Class: "chart " + class, ID: id, W: 960, Title: "Histogram of " + what}
	if h == nil {
		h = &Histogram{}
	}
	total := sum(h.Counts)
	if total == 0 {
		c.Class += " chart-empty"
		c.H = 70
		c.EmptyBg = box(1, 1, float64(c.W-2), float64(c.H-2))
		c.Empty = "No " + what + " measured (no " + of + " in this report)."
		c.Desc = c.Empty
		c.Caption = "Histogram of " + what + ": no data."
		return c
	}
	n := len(h.Counts)
	// Bounds describe the buckets only when there is one more count than
	// bounds; otherwise the buckets are labelled by index.
	bounded := len(h.Bounds) > 0 && len(h.Bounds)+1 == n
	const left, right, top = 56.0, 944.0, 56.0
	const bottom = top + 180
	pw := right - left
	bw := pw / float64(n)
	var maxC uint64
	for _, v := range h.Counts {
		maxC = max(maxC, v)
	}
	yMax, yt := yAxis(float64(maxC)*1.08, left, right, top, bottom) // room for the count above the tallest bar
	c.YTicks = yt
	bucketName := func(i int) string {
		switch {
		case !bounded:
			return "bucket " + strconv.Itoa(i+1)
		case i == 0:
			return "below " + boundLabel(h.Bounds[0])
		case i == n-1:
			return boundLabel(h.Bounds[i-1]) + " or more"
		}
		return boundLabel(h.Bounds[i-1]) + " to " + boundLabel(h.Bounds[i])
	}
	var nonzero, qs []string
	for i, v := range h.Counts {
		x := left + float64(i)*bw
		b := svgBucket{Hit: box(x, top, bw, bottom-top), Tip: bucketName(i) + ": " + num(v) + " " + of + " (" + pct(v, total) + ")"}
		if v > 0 {
			y := bottom - float64(v)/yMax*(bottom-top)
			b.Bars = []svgBar{{"h-bar", box(x+2, y, bw-4, bottom-y)}}
			b.Label, b.LX, b.LY = num(v), f1(x+bw/2), f1(y-4)
			nonzero = append(nonzero, bucketName(i)+": "+num(v))
		}
		c.Buckets = append(c.Buckets, b)
	}
	if bounded {
		// Label every bound, or every other one when the buckets are narrow.
		every := 1
		if bw < 40 {
			every = 2
		}
		for k := 1; k < n; k++ {
			x := left + float64(k)*bw
			t := svgTick{X1: f1(x), Y1: f1(bottom), X2: f1(x), Y2: f1(bottom + 5), LX: f1(x), LY: f1(bottom + 18), Anchor: "middle"}
			if (k-1)%every == 0 {
				t.Label = strings.TrimSuffix(boundLabel(h.Bounds[k-1]), " ms")
			}
			c.XTicks = append(c.XTicks, t)
		}
		// Percentile markers, placed by log interpolation inside their bucket.
		for j, q := range []struct {
			name string
			v    *float64
		}{{"p50", h.P50Ms}, {"p90", h.P90Ms}, {"p99", h.P99Ms}} {
			if q.v == nil {
				continue
			}
			x := left + histPos(h.Bounds, *q.v)*bw
			m := svgMarker{Class: "q-marker", X: f1(x), Y1: f1(top - 40 + 14*float64(j)), Y2: f1(bottom), LY: f1(top - 42 + 14*float64(j) + 10),
				Label: q.name + " " + msText(*q.v)}
			if x > right-120 {
				m.LX, m.Anchor = f1(x-4), "end"
			} else {
				m.LX, m.Anchor = f1(x+4), "start"
			}
			c.Markers = append(c.Markers, m)
			qs = append(qs, q.name+" "+msText(*q.v))
		}
	}
	c.Plot = box(left, top, pw, bottom-top)
	c.XLabel = svgText{X: f1(left + pw/2), Y: f1(bottom + 36), Anchor: "middle", Text: what + ", ms unless marked s (bucket bounds, log scale)"}
	c.YLabel = svgText{X: "14", Y: f1(top + (bottom-top)/2), Anchor: "middle", Text: of,
		Transform: "rotate(-90 14 " + f1(top+(bottom-top)/2) + ")"}
	c.H = int(bottom + 46)
	c.Caption = strings.ToUpper(what[:1]) + what[1:] + " of " + num(total) + " " + of
	if len(qs) > 0 {
		c.Caption += ": " + strings.Join(qs, ", ")
	}
	c.Caption += "."
	c.Desc = "Counts per bucket: " + strings.Join(nonzero, "; ") + "."
	return c
}

// histPos is where value v falls, in bucket widths from the left edge.
func histPos(bounds []float64, v float64) float64 {
	i := 0
	for i < len(bounds) && v >= bounds[i] {
		i++
	}
	var lo, hi float64
	switch {
	case i == 0:
		lo, hi = 0, bounds[0]
	case i == len(bounds):
		lo, hi = bounds[i-1], bounds[i-1]*2
	default:
		lo, hi = bounds[i-1], bounds[i]
	}
	var frac float64
	switch {
	case hi <= lo:
		frac = 0.5
	case lo <= 0:
		frac = v / hi
	default:
		frac = math.Log(v/lo) / math.Log(hi/lo)
	}
	return float64(i) + math.Max(0, math.Min(frac, 1))
}
