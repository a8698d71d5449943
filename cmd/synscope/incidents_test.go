package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/synscope/synscope/report"
)

// TestIncidentsAddUp: incident and verdict counts agree with the per-attempt
// summary on every bundled capture.
func TestIncidentsAddUp(t *testing.T) {
	t.Chdir(filepath.Join("..", ".."))
	for _, path := range captures(t) {
		rep := analyse(t, path)
		s := &rep.Summary
		byKind := map[string]uint64{}
		for _, inc := range rep.Incidents {
			byKind[inc.Kind] += inc.Attempts
			start, _ := time.Parse(time.RFC3339Nano, inc.Start)
			end, _ := time.Parse(time.RFC3339Nano, inc.End)
			if inc.Attempts == 0 || start.IsZero() || end.Before(start) || len(inc.Causes) == 0 || inc.Title == "" || inc.Clients == 0 {
				t.Errorf("%s: incident %d (%s) is incomplete: %+v", path, inc.ID, inc.Kind, inc)
			}
		}
		rows := map[string]report.VerdictRow{}
		for _, r := range rep.Verdict.Rows {
			rows[r.Category] = r
		}
		check := func(what string, got, want uint64) {
			if got != want {
				t.Errorf("%s: %s = %d, want %d", path, what, got, want)
			}
		}
		if rep.IncidentsOmitted == 0 {
			check("unanswered_syn incident attempts", byKind["unanswered_syn"], s.Outcomes.Unanswered)
			check("syn_retransmit incident attempts", byKind["syn_retransmit"], s.Outcomes.AnsweredAfterRetransmit)
			check("refused incident attempts", byKind["refused"], s.Outcomes.Refused)
			check("reset + healthcheck incident attempts", byKind["reset"]+rows["healthcheck_rst"].Attempts, s.ResetsAfterHandshake.ByClient+s.ResetsAfterHandshake.ByServer)
			check("slow_response incident attempts", byKind["slow_response"], rows["slow_application"].Attempts)
		}
		check("verdict lost_in_handshake", rows["lost_in_handshake"].Attempts, s.Outcomes.Unanswered)
		check("verdict answered_late", rows["answered_late"].Attempts, s.Outcomes.AnsweredAfterRetransmit)
		check("verdict refused", rows["refused"].Attempts, s.Outcomes.Refused)
		check("verdict abandoned", rows["abandoned"].Attempts, s.Outcomes.Abandoned)
		check("verdict reset + healthcheck", rows["reset"].Attempts+rows["healthcheck_rst"].Attempts, s.ResetsAfterHandshake.ByClient+s.ResetsAfterHandshake.ByServer)
	}
}

// TestIncidentKinds: each crafted capture raises the incident it was made for.
func TestIncidentKinds(t *testing.T) {
	t.Chdir(filepath.Join("..", ".."))
	cases := []struct {
		file, kind, server string
		check              func(*report.Incident) bool
	}{
		{"unanswered.pcap", "unanswered_syn", "192.0.2.10:443", func(i *report.Incident) bool { return i.Schedule == "0, 1, 3, 7 s" }},
		{"syn-linear-unanswered.pcap", "unanswered_syn", "192.0.2.10:443", func(i *report.Incident) bool { return i.Schedule == "0, 1, 2, 3, 4, 5, 7, 11 s" }},
		{"answered-after-retransmit.pcap", "syn_retransmit", "192.0.2.10:80", func(i *report.Incident) bool { return i.DelayMaxMs != nil && *i.DelayMaxMs == 3000 }},
		{"abandoned.pcap", "synack_retransmit", "192.0.2.10:80", nil},
		{"refused-rst.pcap", "refused", "192.0.2.10:8080", func(i *report.Incident) bool { return i.BySide["rst"] == 1 }},
		{"refused-icmp.pcap", "refused", "192.0.2.10:8443", func(i *report.Incident) bool { return i.BySide["icmp"] == 1 }},
		{"rst-after-handshake.pcap", "reset", "192.0.2.10:80", func(i *report.Incident) bool { return i.BySide["client"] == 2 && i.BySide["server"] == 2 }},
		{"healthcheck-rst.pcap", "healthcheck_rst", "192.0.2.10:80", func(i *report.Incident) bool {
			return i.Prober == "198.51.100.7" && i.IntervalS != nil && *i.IntervalS > 0.98 && *i.IntervalS < 1.02 && i.Severity == "notable"
		}},
		{"slow-response.pcap", "slow_response", "192.0.2.10:80", func(i *report.Incident) bool { return i.DelayMaxMs != nil && *i.DelayMaxMs > 5000 }},
		{"timestamps-declined.pcap", "timestamps", "192.0.2.10:80", func(i *report.Incident) bool { return i.Timestamps != nil && i.Timestamps.SynacksWithoutTS > 0 }},
		{"lab-syn-drop.pcap", "syn_retransmit", "10.231.0.2:8081", nil},
		{"lab-refused.pcap", "refused", "10.231.0.2:8089", nil},
		{"lab-ts-off.pcap", "timestamps", "10.231.0.2:8082", nil},
	}
	for _, c := range cases {
		rep := analyse(t, filepath.Join("testdata", "pcaps", c.file))
		var found *report.Incident
		for i := range rep.Incidents {
			if inc := &rep.Incidents[i]; inc.Kind == c.kind && inc.Server == c.server {
				found = inc
			}
		}
		if found == nil {
			t.Errorf("%s: no %s incident for %s", c.file, c.kind, c.server)
			continue
		}
		if c.check != nil && !c.check(found) {
			t.Errorf("%s: %s incident does not hold what it should: %+v", c.file, c.kind, *found)
		}
		if len(found.Samples) == 0 {
			t.Errorf("%s: %s incident has no sample attempts", c.file, c.kind)
		}
	}
	// The health checker's resets are not reported as resets.
	rep := analyse(t, filepath.Join("testdata", "pcaps", "healthcheck-rst.pcap"))
	for _, inc := range rep.Incidents {
		if inc.Kind == "reset" {
			t.Errorf("healthcheck-rst.pcap: the prober's resets leaked into reset incident %d", inc.ID)
		}
	}
}
