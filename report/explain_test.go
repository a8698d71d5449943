package report

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/synscope/synscope/analyze"
)

// An unanswered-SYN incident with the shape of a flood from forged sources
// (many attempts, nearly one client address each, no SYN retransmitted)
// says so in its title and a cause; one that misses any of the three
// does not. "Nothing answered" keeps its confidence: the pattern has
// look-alikes.
func TestSpoofedSYNFlood(t *testing.T) {
	base := analyze.Incident{
		Kind: analyze.IncUnansweredSYN, Server: netip.MustParseAddrPort("192.0.2.10:80"),
		Start: 1e18, End: 1e18 + int64(time.Minute), Attempts: 100_000, Clients: 97_000, ServerAttempts: 100_000,
		Schedule: []time.Duration{0},
	}
	for _, tc := range []struct {
		name  string
		edit  func(*analyze.Incident)
		flood bool
	}{
		{"flood", func(*analyze.Incident) {}, true},
		{"few attempts", func(i *analyze.Incident) { i.Attempts, i.Clients, i.ServerAttempts = 999, 999, 999 }, false},
		{"clients come back", func(i *analyze.Incident) { i.Clients = 80_000 }, false},
		{"SYNs retransmitted", func(i *analyze.Incident) { i.Schedule = []time.Duration{0, time.Second} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inc := base
			tc.edit(&inc)
			out := NewIncident(&inc, time.Second)
			named := strings.Contains(out.Title, "a SYN flood's pattern")
			spoofed := false
			for _, c := range out.Causes {
				spoofed = spoofed || strings.Contains(c.Cause, "spoofed")
			}
			if named != tc.flood || spoofed != tc.flood {
				t.Fatalf("title %q, causes %+v: want flood %v", out.Title, out.Causes, tc.flood)
			}
			for _, c := range out.Causes {
				if strings.HasPrefix(c.Cause, "nothing answered") && c.Confidence != "high" {
					t.Errorf("%q has confidence %s", c.Cause, c.Confidence)
				}
			}
		})
	}
}
