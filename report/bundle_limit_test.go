package report

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// bundleSize is the total size of the files in dir, and their names.
func bundleSize(t *testing.T, dir string) (int64, []string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	var names []string
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
		names = append(names, e.Name())
	}
	return n, names
}

// TestWriteBundleMaxBytes: the report files are always whole; the
// incidents' pcapngs take what is left, in incident order, each cut to the
// packets that fit; the bundle stays within the limit, and report.md's index
// and each cut file's section comment say what was cut.
func TestWriteBundleMaxBytes(t *testing.T) {
	// Unbounded: the reference sizes.
	full := t.TempDir()
	if err := WriteBundle(full, bundleReport(), BundleOptions{}, bundleExtract(bundleSources)); err != nil {
		t.Fatal(err)
	}
	size := func(dir, name string) int64 {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	reports := size(full, "report.md") + size(full, "report.html") + size(full, "report.json")
	md, _ := os.ReadFile(filepath.Join(full, "report.md"))
	if !strings.Contains(string(md), "## Evidence files") || !strings.Contains(string(md), "| incident-2.pcapng | 2: syn_retransmit at 192.0.2.10:80 | 9 |") {
		t.Errorf("report.md has no index of the evidence files:\n%s", md[max(0, len(md)-600):])
	}
	if strings.Contains(string(md), "size limit") {
		t.Error("the unbounded bundle's index mentions a size limit")
	}

	// Room for the report files (WriteBundle keeps some 100 bytes per file
	// for the index's notes), incident 1 whole and about half of incident
	// 2; nothing for incident 3.
	inc1 := size(full, "incident-1.pcapng")
	limit := reports + 512 + inc1 + size(full, "incident-2.pcapng")/2
	dir := t.TempDir()
	r := bundleReport()
	if err := WriteBundle(dir, r, BundleOptions{MaxBytes: limit}, bundleExtract(bundleSources)); err != nil {
		t.Fatal(err)
	}
	total, names := bundleSize(t, dir)
	if total > limit {
		t.Errorf("bundle of %d bytes, over the limit of %d (files %v)", total, limit, names)
	}
	if size(dir, "incident-1.pcapng") != inc1 {
		t.Error("incident-1.pcapng was cut though it came first and fit")
	}
	got := readBundlePcapng(t, filepath.Join(dir, "incident-2.pcapng"))
	if len(got.data) == 0 || len(got.data) >= 9 {
		t.Errorf("incident-2.pcapng holds %d of its 9 packets, want a part", len(got.data))
	}
	if !strings.Contains(got.section, "left out: the bundle's size limit") {
		t.Errorf("incident-2.pcapng does not say it was cut: %q", got.section)
	}
	for i := 1; i < len(got.ci); i++ {
		if got.ci[i].Timestamp.Before(got.ci[i-1].Timestamp) {
			t.Error("the kept packets are not the earliest, in time order")
		}
	}
	md, _ = os.ReadFile(filepath.Join(dir, "report.md"))
	idx := string(md[strings.Index(string(md), "## Evidence files"):])
	for _, want := range []string{
		"| incident-1.pcapng | 1: reset at 192.0.2.10:80 | 11 |",
		"| incident-2.pcapng | 2: syn_retransmit at 192.0.2.10:80 | " + strconv.Itoa(len(got.data)) + " of 9 |",
		"packets cut: the bundle's size limit was reached",
		"| incident-3.pcapng | 3: refused at 192.0.2.10:8443 | 0 of 2 | - | not written: the bundle's size limit was reached |",
		"cut 2 files:",
	} {
		if !strings.Contains(idx, want) {
			t.Errorf("report.md's index lacks %q:\n%s", want, idx)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "incident-3.pcapng")); !os.IsNotExist(err) {
		t.Error("incident-3.pcapng written though there was no room")
	}

	// A limit below the report files: they are still written, whole; no
	// pcapng is.
	tiny := t.TempDir()
	if err := WriteBundle(tiny, bundleReport(), BundleOptions{MaxBytes: 1000}, bundleExtract(bundleSources)); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(tiny, "*.pcapng")); len(m) != 0 {
		t.Errorf("pcapngs written past the limit: %v", m)
	}
	for _, name := range []string{"report.html", "report.json"} {
		if size(tiny, name) != size(full, name) {
			t.Errorf("%s cut by the limit: the report files are always whole", name)
		}
	}
}
