package benchgen

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// Write writes the capture cfg describes to out.
func Write(out io.Writer, cfg Config) (Manifest, error) {
	g := plan(cfg)
	w := newWriter(out, g)
	fr := rand.New(rand.NewPCG(cfg.Seed, 0xf100d))
	start := int64(cfg.FloodStart / 1000)
	span := int64(cfg.FloodLen / 1000)
	n := int64(cfg.FloodSYNs)
	var step int64
	if n > 0 {
		step = max(span/n, 1)
	}
	fi := int64(0)
	floodAt := func() int64 { // the next flood SYN's time (µs), or -1 when done
		if fi >= n {
			return -1
		}
		return start + fi*span/n + fr.Int64N(step)
	}
	ft := floodAt()
	for _, i := range g.order {
		p := &g.pkts[i]
		for ft >= 0 && ft < p.t {
			w.flood(ft, fr)
			fi++
			ft = floodAt()
		}
		w.conn(p)
	}
	for ft >= 0 {
		w.flood(ft, fr)
		fi++
		ft = floodAt()
	}
	if err := w.w.Flush(); err != nil {
		return Manifest{}, err
	}
	m := g.man
	m.FloodSYNs = int(fi)
	m.Packets, m.Bytes = w.packets, w.bytes
	return m, nil
}

// Result is what GenerateFile did.
type Result struct {
	Path     string
	Manifest Manifest
	SHA256   string
	Skipped  bool // the file was up to date
}

// sidecar is the first line of NAME.sha256 (the rest is sha256sum's format:
// `sha256sum -c` skips lines starting with #).
func sidecarHeader(cfg Config, size, mtime int64) string {
	return fmt.Sprintf("# %s config=%s size=%d mtime=%d", Version, cfg.Hash(), size, mtime)
}

// GenerateFile writes cfg into dir unless dir already holds it: a file of
// the size its NAME.sha256 sidecar records, with the mtime recorded there,
// by this Version from the same Config. verify also rehashes an existing file.
func GenerateFile(dir string, cfg Config, force, verify bool) (Result, error) {
	path := filepath.Join(dir, cfg.Name)
	side := path + ".sha256"
	res := Result{Path: path}
	if !force {
		if ok, m, sum := upToDate(path, side, cfg, verify); ok {
			res.Manifest, res.SHA256, res.Skipped = m, sum, true
			return res, nil
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	os.Remove(side)
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return res, err
	}
	h := sha256.New()
	m, err := Write(io.MultiWriter(f, h), cfg)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return res, fmt.Errorf("writing %s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return res, err
	}
	res.Manifest, res.SHA256 = m, hex.EncodeToString(h.Sum(nil))
	js, _ := json.Marshal(m)
	text := sidecarHeader(cfg, st.Size(), st.ModTime().UnixNano()) + "\n# manifest " + string(js) + "\n" +
		res.SHA256 + "  " + cfg.Name + "\n"
	if err := os.WriteFile(side, []byte(text), 0o644); err != nil {
		return res, err
	}
	return res, nil
}

func upToDate(path, side string, cfg Config, verify bool) (bool, Manifest, string) {
	var m Manifest
	text, err := os.ReadFile(side)
	if err != nil {
		return false, m, ""
	}
	st, err := os.Stat(path)
	if err != nil {
		return false, m, ""
	}
	lines := strings.Split(strings.TrimSpace(string(text)), "\n")
	if len(lines) != 3 || lines[0] != sidecarHeader(cfg, st.Size(), st.ModTime().UnixNano()) {
		return false, m, ""
	}
	if json.Unmarshal([]byte(strings.TrimPrefix(lines[1], "# manifest ")), &m) != nil {
		return false, m, ""
	}
	sum, name, ok := strings.Cut(lines[2], "  ")
	if !ok || name != cfg.Name {
		return false, m, ""
	}
	if verify {
		f, err := os.Open(path)
		if err != nil {
			return false, m, ""
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, bufio.NewReaderSize(f, 1<<20)); err != nil || hex.EncodeToString(h.Sum(nil)) != sum {
			return false, m, ""
		}
	}
	return true, m, sum
}

// ReadManifest returns the manifest recorded in the .sha256 sidecar of the
// capture at path.
func ReadManifest(path string) (Manifest, error) {
	var m Manifest
	text, err := os.ReadFile(path + ".sha256")
	if err != nil {
		return m, err
	}
	for _, l := range strings.Split(string(text), "\n") {
		if js, ok := strings.CutPrefix(l, "# manifest "); ok {
			return m, json.Unmarshal([]byte(js), &m)
		}
	}
	return m, fmt.Errorf("%s.sha256: no manifest", path)
}
