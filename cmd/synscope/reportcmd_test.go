package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// synscope runs the command line in-process.
func synscope(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = runMain(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// showcaseJSON analyses the showcase capture and saves its JSON report.
func showcaseJSON(t *testing.T) (path string, data []byte) {
	t.Helper()
	t.Chdir(filepath.Join("..", ".."))
	code, out, errs := synscope("", "read", "--format", "json", filepath.Join("testdata", "pcaps", "showcase.pcapng"))
	if code != exitOK {
		t.Fatalf("read --format json: exit %d: %s", code, errs)
	}
	path = filepath.Join(t.TempDir(), "showcase.json")
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, []byte(out)
}

func TestReportRendersSavedJSON(t *testing.T) {
	path, data := showcaseJSON(t)

	code, md, errs := synscope("", "report", "--format", "markdown", path)
	if code != exitOK {
		t.Fatalf("report --format markdown: exit %d: %s", code, errs)
	}
	for _, want := range []string{"# synscope report: showcase.pcapng\n", "## Verdict", "## Incidents", "### Incident #1: ",
		"| offset ms | direction | flags | seq | ack | len | note |", "client→server", "## Sources", "testdata/pcaps/showcase.pcapng", "## Settings"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}

	out := filepath.Join(t.TempDir(), "showcase.html")
	code, stdout, errs := synscope("", "report", "--format", "html", "-o", out, path)
	if code != exitOK || stdout != "" {
		t.Fatalf("report --format html -o: exit %d, stdout %d bytes: %s", code, len(stdout), errs)
	}
	html, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<!DOCTYPE html>", "<title>synscope report: showcase.pcapng</title>", `<svg class="chart chart-series"`,
		`<svg class="chart chart-rtt"`, `<svg class="chart chart-ttfb"`, `id="incident-1"`, `<table class="timeline">`} {
		if !bytes.Contains(html, []byte(want)) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "http://", "https://", " src="} {
		if bytes.Contains(html, []byte(bad)) {
			t.Errorf("HTML contains %q", bad)
		}
	}

	// Stdin, and the JSON and text formats: a saved report renders exactly
	// as the analysis did.
	code, js, errs := synscope(string(data), "report", "--format", "json", "-")
	if code != exitOK {
		t.Fatalf("report --format json -: exit %d: %s", code, errs)
	}
	if js != string(data) {
		t.Errorf("JSON re-rendered from stdin differs from the original")
	}
	_, text, _ := synscope("", "read", filepath.Join("testdata", "pcaps", "showcase.pcapng"))
	code, text2, errs := synscope("", "report", path)
	if code != exitOK {
		t.Fatalf("report (text): exit %d: %s", code, errs)
	}
	if text2 != text {
		a, b := strings.Split(text, "\n"), strings.Split(text2, "\n")
		for i := 0; i < len(a) && i < len(b); i++ {
			if a[i] != b[i] {
				t.Errorf("text rendered from the saved JSON differs from `synscope read` at line %d:\n  read:   %s\n  report: %s", i+1, a[i], b[i])
				break
			}
		}
		if len(a) != len(b) {
			t.Errorf("text rendered from the saved JSON has %d lines, `synscope read` %d", len(b), len(a))
		}
	}
}

func TestReportErrors(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.json")
	if err := os.WriteFile(corrupt, []byte(`{"schema": "synscope/v1", "sources": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.json")
	if err := os.WriteFile(other, []byte(`{"schema": "something/v9"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  []string
	}{
		{"corrupt", "", []string{"report", corrupt}, exitDamaged, []string{corrupt, "decoding report"}},
		{"corrupt html", "", []string{"report", "--format", "html", corrupt}, exitDamaged, []string{corrupt}},
		{"wrong schema", "", []string{"report", other}, exitDamaged, []string{other, `unsupported report schema "something/v9"`}},
		{"missing", "", []string{"report", filepath.Join(dir, "nope.json")}, exitDamaged, []string{filepath.Join(dir, "nope.json")}},
		{"corrupt stdin", "not json", []string{"report", "-"}, exitDamaged, []string{"stdin: decoding report"}},
		{"no file", "", []string{"report"}, exitUsage, []string{"no report file given"}},
		{"two files", "", []string{"report", corrupt, other}, exitUsage, []string{"one report file at a time"}},
		{"bad format", "", []string{"report", "--format", "pdf", corrupt}, exitUsage, []string{`unknown --format "pdf"`}},
		{"bad flag", "", []string{"report", "--colour", corrupt}, exitUsage, []string{"unknown flag: --colour"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := synscope(tc.stdin, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr: %s)", code, tc.code, stderr)
			}
			if stdout != "" {
				t.Errorf("wrote to stdout: %q", stdout)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}

	code, _, stderr := synscope("", "report", "--help")
	if code != exitOK || !strings.Contains(stderr, "Usage: synscope report [flags] FILE.json") || !strings.Contains(stderr, "--format") {
		t.Errorf("report --help: exit %d:\n%s", code, stderr)
	}
	code, stdout, _ := synscope("", "help")
	if code != exitOK || !strings.Contains(stdout, "synscope report [flags] FILE.json") {
		t.Errorf("help does not list the report command:\n%s", stdout)
	}
}
