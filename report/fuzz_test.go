package report

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzReadJSON: the loader behind `synscope report` takes any bytes without
// panicking, and whatever it accepts renders in every format.
func FuzzReadJSON(f *testing.F) {
	for _, name := range []string{"refused-icmp.pcap.json"} {
		if b, err := os.ReadFile(filepath.Join("..", "testdata", "golden", name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"schema":"synscope/v1","incidents":[{"id":1,"samples":[{"timeline":[{}]}]}],"series":{"attempts":[1,2]}}`))
	f.Add([]byte(`{"schema":"synscope/v1","distributions":{"handshake_rtt":{"bounds_ms":[1],"counts":[]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ReadJSON(bytes.NewReader(data))
		if err != nil {
			return
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, w := range []func(io.Writer, *Report) error{WriteText, WriteJSON, WriteMarkdown, WriteHTML} {
				_ = w(io.Discard, r)
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("rendering did not finish in 10 s; input starts %q", data[:min(len(data), 300)])
		}
	})
}
