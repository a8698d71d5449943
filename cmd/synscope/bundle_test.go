package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"
)

// TestReadBundle: --bundle writes the three reports and one pcapng per
// incident with commented packets; --anonymize leaves no real address in any
// of them.
func TestReadBundle(t *testing.T) {
	t.Chdir(filepath.Join("..", ".."))
	dir := t.TempDir()
	var out, errb bytes.Buffer
	args := []string{"read", "--bundle", dir, "--anonymize-key", "k", "testdata/pcaps/showcase.pcapng"}
	if code := runMain(context.Background(), args, nil, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, name := range []string{"report.md", "report.html", "report.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("192.0.2.10")) || bytes.Contains(b, []byte("198.51.100.")) {
			t.Errorf("%s still holds a real address", name)
		}
	}
	if strings.Contains(out.String(), "192.0.2.10") {
		t.Error("the anonymised text report on stdout still holds a real address")
	}
	pcaps, _ := filepath.Glob(filepath.Join(dir, "incident-*.pcapng"))
	if len(pcaps) == 0 {
		t.Fatal("no incident pcapng files")
	}
	for _, p := range pcaps {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := pcapgo.NewNgReader(f, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		n := 0
		for {
			data, ci, opts, err := r.ReadPacketDataWithOptions()
			if err != nil {
				break
			}
			n++
			if len(opts.Comments) == 0 {
				t.Errorf("%s packet %d has no comment", p, n)
			}
			if ci.CaptureLength > 14+60+60 {
				t.Errorf("%s packet %d keeps %d bytes: headers only by default", p, n, ci.CaptureLength)
			}
			if bytes.Contains(data, []byte{192, 0, 2, 10}) {
				t.Errorf("%s packet %d holds the server's real address", p, n)
			}
		}
		f.Close()
		if n == 0 {
			t.Errorf("%s holds no packets", p)
		}
	}
}
