package capture

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// corpus is the shared capture corpus, relative to this package directory
// (the repository is /work/main, the corpus /work/shared/corpus). Its files
// are read in place and never copied into the repository.
var corpus = filepath.Join("..", "..", "shared", "corpus")

// pcapgoDisagrees lists the corpus files on which pcapgo and this package do
// not agree, and why this package is right.
var pcapgoDisagrees = map[string]string{}

// TestAgainstPcapgo reads every corpus capture with this package and with
// pcapgo: same packets, times, lengths, bytes and link types. The packet
// counts are also checked against MANIFEST.tsv, which capinfos wrote.
func TestAgainstPcapgo(t *testing.T) {
	dir := filepath.Join(corpus, "pcaps")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Skipf("capture corpus not found at %s (%v); it lives outside the repository in /work/shared", dir, err)
	}
	counts := manifestCounts(t)
	for _, e := range entries {
		name := e.Name()
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			ours, info, ourErr := readOurs(path)
			ref, refErr := readPcapgoFile(path, info.Format)
			if why, ok := pcapgoDisagrees[name]; ok {
				t.Logf("known disagreement: %s", why)
				return
			}
			if ourErr != nil || refErr != nil {
				t.Fatalf("ours: %d packets, err %v; pcapgo: %d packets, err %v", len(ours), ourErr, len(ref), refErr)
			}
			comparePackets(t, ours, ref)
			if want, ok := counts[name]; ok && uint64(want) != info.Packets {
				t.Errorf("%d packets, MANIFEST.tsv says %d", info.Packets, want)
			}
		})
	}
}

func readOurs(path string) ([]Packet, *SourceInfo, error) {
	src, err := Open(path)
	if err != nil {
		return nil, &SourceInfo{}, err
	}
	defer src.Close()
	pkts, err := readAll(src)
	return pkts, src.Info(), err
}

func readPcapgoFile(path, format string) ([]Packet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readPcapgo(f, format)
}

// readPcapgo reads a capture with pcapgo into Packets: format picks the
// reader, since pcapgo does not detect it.
func readPcapgo(f io.Reader, format string) ([]Packet, error) {
	var pkts []Packet
	switch format {
	case "pcap":
		r, err := pcapgo.NewReader(f)
		if err != nil {
			return nil, err
		}
		for {
			data, ci, err := r.ReadPacketData()
			if err != nil {
				return pkts, eofIsNil(err)
			}
			pkts = append(pkts, Packet{Data: data, Time: ci.Timestamp.UnixNano(), OrigLen: ci.Length,
				LinkType: uint16(r.LinkType()), Num: uint64(len(pkts) + 1)})
		}
	case "pcapng":
		r, err := pcapgo.NewNgReader(f, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return nil, err
		}
		for {
			data, ci, err := r.ReadPacketData()
			if err != nil {
				return pkts, eofIsNil(err)
			}
			pkts = append(pkts, Packet{Data: data, Time: ci.Timestamp.UnixNano(), OrigLen: ci.Length,
				LinkType: uint16(ci.AncillaryData[0].(layers.LinkType)), IfIndex: ci.InterfaceIndex, Num: uint64(len(pkts) + 1)})
		}
	}
	return nil, fmt.Errorf("no pcapgo reader for format %q", format)
}

func eofIsNil(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

func comparePackets(t *testing.T, ours, ref []Packet) {
	t.Helper()
	if len(ours) != len(ref) {
		t.Errorf("%d packets, pcapgo %d", len(ours), len(ref))
	}
	bad := 0
	for i := range min(len(ours), len(ref)) {
		o, r := ours[i], ref[i]
		if o.Time != r.Time || o.OrigLen != r.OrigLen || o.LinkType != r.LinkType || o.IfIndex != r.IfIndex || !bytes.Equal(o.Data, r.Data) {
			if bad++; bad <= 5 {
				t.Errorf("packet %d: ours time %d len %d/%d link %d if %d, pcapgo time %d len %d/%d link %d if %d, same bytes %v",
					i+1, o.Time, len(o.Data), o.OrigLen, o.LinkType, o.IfIndex, r.Time, len(r.Data), r.OrigLen, r.LinkType, r.IfIndex,
					bytes.Equal(o.Data, r.Data))
			}
		}
	}
	if bad > 5 {
		t.Errorf("... %d packets differ in all", bad)
	}
}

// manifestCounts reads the packets column of the corpus manifest.
func manifestCounts(t *testing.T) map[string]int {
	f, err := os.Open(filepath.Join(corpus, "MANIFEST.tsv"))
	if err != nil {
		t.Logf("no manifest, packet counts not cross-checked: %v", err)
		return nil
	}
	defer f.Close()
	counts := map[string]int{}
	sc := bufio.NewScanner(f)
	col := -1
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if col < 0 {
			for i, name := range fields {
				if name == "packets" {
					col = i
				}
			}
			if col < 0 {
				t.Fatalf("manifest has no packets column")
			}
			continue
		}
		if col < len(fields) {
			if n, err := strconv.Atoi(fields[col]); err == nil {
				counts[fields[0]] = n
			}
		}
	}
	return counts
}

// The synthetic captures of the other tests, read by both.
func TestAgainstPcapgoSynthetic(t *testing.T) {
	for name, tc := range map[string]struct {
		data   []byte
		format string
	}{
		"bench.pcap":   {benchPcap(), "pcap"},
		"bench.pcapng": {benchPcapng(), "pcapng"},
		"be-nsec.pcap": {newPcapFile(be, true, 65535, 228).add(1, 999999999, frame(60, 1), 60).add(2, 5, frame(99, 2), 1500).buf, "pcap"},
		"two-sections.pcapng": {newNgFile(be).idb(1, 0, (&ngFile{o: be}).opt(optTSResol, []byte{9})).epb(0, 12345678901, frame(60, 1), 60).
			shb(le).idb(101, 0).idb(1, 0, (&ngFile{o: le}).opt(optTSOffset, le.AppendUint64(nil, 7))).epb(1, 3, frame(70, 2), 70).
			epb(0, 4, frame(80, 3), 90).buf, "pcapng"},
	} {
		t.Run(name, func(t *testing.T) {
			ours, _ := mustRead(t, tc.data, name)
			ref, err := readPcapgo(bytes.NewReader(tc.data), tc.format)
			if err != nil {
				t.Fatal(err)
			}
			comparePackets(t, ours, ref)
		})
	}
}

// Where this package and pcapgo part ways on purpose. The test pins pcapgo's
// behaviour too, so that a change on its side shows up here.
func TestPcapgoDifferences(t *testing.T) {
	t.Run("pcap caplen above the wire length", func(t *testing.T) {
		// libpcap's pcap_next_packet (sf-pcap.c) has no such check and hands
		// the record out; pcapgo refuses the record and, with it, the rest
		// of the file. We read it with OrigLen raised to the captured length.
		b := newPcapFile(le, false, 65535, 1).add(1, 0, frame(80, 1), 60).add(2, 0, frame(60, 2), 60).buf
		ours, _ := mustRead(t, b, "x")
		if len(ours) != 2 || ours[0].OrigLen != 80 {
			t.Errorf("ours: %d packets, first OrigLen %d; want 2, 80", len(ours), ours[0].OrigLen)
		}
		ref, err := readPcapgo(bytes.NewReader(b), "pcap")
		if len(ref) != 0 || err == nil || !strings.Contains(err.Error(), "capture length exceeds original packet length") {
			t.Errorf("pcapgo: %d packets, err %v; expected it to refuse the record", len(ref), err)
		}
	})
	t.Run("pcapng simple packet time", func(t *testing.T) {
		// A simple packet block has no timestamp. pcapgo gives it the zero
		// time.Time (year 1); we give it the previous packet's time, so it
		// stays in order among the others and in a merge.
		b := newNgFile(le).idb(1, 0).epb(0, 1700000000e6, frame(60, 1), 60).spb(frame(60, 2), 60).buf
		ours, _ := mustRead(t, b, "x")
		ref, err := readPcapgo(bytes.NewReader(b), "pcapng")
		if err != nil || len(ours) != 2 || len(ref) != 2 {
			t.Fatalf("ours %d packets, pcapgo %d, err %v", len(ours), len(ref), err)
		}
		if ours[1].Time != 1700000000e9 || !bytes.Equal(ours[1].Data, ref[1].Data) {
			t.Errorf("ours: simple packet at %d, want the previous packet's time", ours[1].Time)
		}
		if !time.Unix(0, ref[1].Time).Before(time.Unix(0, 0)) {
			t.Errorf("pcapgo: simple packet at %d, expected the zero time", ref[1].Time)
		}
	})
	t.Run("pcapng binary timestamp resolution", func(t *testing.T) {
		// With if_tsresol 2^-20, pcapgo scales the fraction by the integer
		// 1e9/2^20 = 953 instead of 953.67: half a second comes out as
		// 0.499646464 s. We compute it exactly.
		f := newNgFile(le)
		b := f.idb(1, 0, f.opt(optTSResol, []byte{0x80 | 20})).epb(0, 1<<19, frame(60, 1), 60).buf
		ours, _ := mustRead(t, b, "x")
		ref, err := readPcapgo(bytes.NewReader(b), "pcapng")
		if err != nil || len(ours) != 1 || len(ref) != 1 {
			t.Fatalf("ours %d packets, pcapgo %d, err %v", len(ours), len(ref), err)
		}
		if ours[0].Time != 500_000_000 || ref[0].Time != 499_646_464 {
			t.Errorf("ours %d ns (want 500000000), pcapgo %d ns (expected 499646464)", ours[0].Time, ref[0].Time)
		}
	})
}
