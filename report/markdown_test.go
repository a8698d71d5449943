package report

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func renderMarkdown(t *testing.T, r *Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteMarkdown(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestMarkdownStructure(t *testing.T) {
	r := fixtureReport()
	md := renderMarkdown(t, r)
	if !strings.HasPrefix(md, "# synscope report: edge-lb-2026-03-01.pcapng\n\n") {
		t.Errorf("title line: %q", strings.SplitN(md, "\n", 2)[0])
	}
	// The summary paragraph names the main failure (the critical incident).
	para := strings.SplitN(md, "\n\n", 3)[1]
	for _, want := range []string{"48,213 packets", "1,843 TCP connection attempts", "captures/edge-lb-2026-03-01.pcapng",
		"2026-03-01 10:00:00.000 to 10:01:59.800 UTC", "Main failure (incident #1, critical): 37 connection attempts", "damaged"} {
		if !strings.Contains(para, want) {
			t.Errorf("summary paragraph lacks %q:\n%s", want, para)
		}
	}
	order := []string{"## Verdict", "| where | attempts | share | incidents | meaning |", "| lost_in_handshake | 37 | 2.0% | #1 |",
		"## Outcomes", "## Incidents (5)"}
	for _, inc := range r.Incidents {
		order = append(order, "### Incident #"+strconv.Itoa(inc.ID)+": "+inc.Kind+", "+inc.Severity+", "+inc.Server+", ")
		for _, a := range inc.Samples {
			order = append(order, "#### Attempt "+strconv.FormatUint(a.ID, 10)+": ",
				"| offset ms | direction | flags | seq | ack | len | note |")
		}
	}
	order = append(order, "## Sources", "| captures/edge-lb-2026-03-01.pcapng | pcapng |", "1 damaged record(s), read anyway; first: record 48214",
		"## Settings", "| SYN timeout (--syn-timeout) | 3s |")
	pos := 0
	for _, want := range order {
		i := strings.Index(md[pos:], want)
		if i < 0 {
			t.Fatalf("missing or out of order: %q (after byte %d)\n%s", want, pos, md)
		}
		pos += i + len(want)
	}
	for _, want := range []string{
		"- retransmit schedule: 0, 1, 3, 7 s",
		"- by side: client 1, server 6", // map keys sorted
		"- by phase: after request 5, before data 2",
		"- 29 clients affected",
		"1. SYNs dropped intermittently before the listening socket",
		"(confidence: medium)\n   - check: on the server: nft list ruleset",
		"   - because: only 9% of attempts failed",
		"3. the SYN-ACKs were sent but lost",
		"| 0.000 | client→server | S | 1804289383 | 0 | 0 | SYN |",
		"| 1000.412 | server→client | S. | 1714636915 | 1681692778 | 0 | SYN-ACK |",
		"| 0.520 | network→client | icmp 3/13 | 719885386 | 0 | 0 | ICMP unreachable |",
		"35 more attempts in this incident are not shown.",
		"|---|--:|--:|---|---|",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if regexp.MustCompile(`<[A-Za-z/!]`).MatchString(md) {
		t.Errorf("markdown contains raw HTML: %q", regexp.MustCompile(`.*<[A-Za-z/!].*`).FindString(md))
	}
	checkMarkdownTables(t, md)
	if again := renderMarkdown(t, fixtureReport()); again != md {
		t.Error("markdown output is not deterministic")
	}
}

// checkMarkdownTables checks that every row of every table has as many
// cells as its header: an unescaped '|' in a value would add a cell.
func checkMarkdownTables(t *testing.T, md string) {
	t.Helper()
	want := -1
	tables := 0
	for n, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			want = -1
			continue
		}
		cells := markdownCells(line)
		if want < 0 {
			want = cells
			tables++
			continue
		}
		if cells != want {
			t.Errorf("line %d has %d cells, its table %d:\n%s", n+1, cells, want, line)
		}
	}
	if tables == 0 {
		t.Error("no tables")
	}
}

// markdownCells counts the cells of a table row: the unescaped pipes, less one.
func markdownCells(line string) int {
	pipes := 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++ // skip the escaped character
		case '|':
			pipes++
		}
	}
	return pipes - 1
}

func TestMarkdownEscaping(t *testing.T) {
	md := renderMarkdown(t, hostileReport())
	// Every '<' must be backslash-escaped, so none can open an HTML tag.
	if m := regexp.MustCompile(`(^|[^\\])<`).FindString(md); m != "" {
		t.Errorf("unescaped '<' in markdown: %q", m)
	}
	for _, want := range []string{
		`### Incident #1: unanswered_syn, critical, \<script\>alert(1)\</script\>a\|b, `,
		`**title a\|b \<script\>alert(1)\</script\> \*bold\* \[link\](x) \` + "`code\\`**",
		`| lost_in_handshake | 37 | 2.0% | #1 | meaning a\|b \<script\>alert(1)\</script\> |`,
		`| note a\|b \<script\>alert(1)\</script\> |`,
		`- \- starts like a list`,
		`| captures/a\|b \<script\>alert(1)\</script\>.pcapng |`,
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	checkMarkdownTables(t, md)
}

func TestMarkdownEmpty(t *testing.T) {
	md := renderMarkdown(t, &Report{Schema: Schema, Generator: "synscope test"})
	for _, want := range []string{"# synscope report\n", "No incidents", "## Incidents\n\nNo incidents.", "## Sources", "## Settings"} {
		if !strings.Contains(md, want) {
			t.Errorf("empty report markdown lacks %q:\n%s", want, md)
		}
	}
	checkMarkdownTables(t, md)
}

func TestMdEscape(t *testing.T) {
	for in, want := range map[string]string{
		"unanswered_syn":       "unanswered_syn",
		"_x_ and __init__":     `\_x\_ and \_\_init\_\_`,
		"a*b `c` [d] <e> f|g":  "a\\*b \\`c\\` \\[d\\] \\<e\\> f\\|g",
		"AT&T &amp; & x":       `AT\&T \&amp; & x`,
		"two\nlines\r\tand":    "two lines  and",
		`back\slash ~strike~`:  `back\\slash \~strike\~`,
		"±1.2 ms, 10:00–10:01": "±1.2 ms, 10:00–10:01",
	} {
		if got := mdEscape(in); got != want {
			t.Errorf("mdEscape(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"- item": `\- item`, "# head": `\# head`, "10. ten": `10\. ten`, "10 ten": "10 ten", "+1": `\+1`,
	} {
		if got := mdBlock(in); got != want {
			t.Errorf("mdBlock(%q) = %q, want %q", in, got, want)
		}
	}
}
