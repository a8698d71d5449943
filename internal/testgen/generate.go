package testgen

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gopacket/gopacket/layers"
)

// LabFiles are the captures recorded by testdata/lab/record.sh and
// record-kernel.sh; the generator does not make them but lists them in
// README.md. How is how they were made ("" for record.sh's tcpdump).
var LabFiles = []struct{ Name, Desc, How string }{
	{"lab-http.pcap", "real kernel traffic: GET with Connection: close to a python http.server-based server, the server closes first (FIN)", ""},
	{"lab-refused.pcap", "real kernel traffic: connect to a closed port, RST+ACK from the server's kernel", ""},
	{"lab-syn-drop.pcap", "real kernel traffic: nftables drops SYNs to :8081 until 4 are dropped (~3 s); the client kernel's own retransmit schedule (tcp_syn_linear_timeouts=4), then the handshake", ""},
	{"lab-ts-off.pcap", "real kernel traffic: server namespace with net.ipv4.tcp_timestamps=0, the client offers timestamps", ""},
	{"lab-linger-rst.pcap", "real kernel traffic: the client closes with SO_LINGER 0 (RST+ACK) after its request was answered", ""},
	{"lab-kernel-nft-drop.pcapng", "real kernel traffic with the server kernel's evidence: nftables drops the first 2 SYNs (kfree_skb NETFILTER_DROP at nft_do_chain), the third is answered", labKernelHow},
	{"lab-kernel-accept-overflow.pcapng", "real kernel traffic with the server kernel's evidence: a listener with backlog 4 that never accepts, 12+3 connects, tcp_syncookies=1, the server's packets paced by tbf: SYNs dropped silently at the full accept queue (ListenOverflows), handshake ACKs dropped (TCP_LISTEN_OVERFLOW; cookie_v4_check for syncookies) and SYN-ACK retransmits", labKernelHow},
	{"lab-kernel-paws.pcapng", "real kernel traffic with the server kernel's evidence: the server closes first (TIME-WAIT), the client reconnects from the same port with an older timestamp: TCP_RFC7323_TW_PAWS, the client's RST, its SYN retransmit answered", labKernelHow},
	{"lab-kernel-healthcheck.pcapng", "real kernel traffic with the server kernel's evidence: 8 health probes 250 ms apart closed with SO_LINGER 0, tcp_receive_reset on each", labKernelHow},
}

const labKernelHow = "testdata/lab/record-kernel.sh (synscope live --write, eBPF engine, in the server namespace); pcapng (ns), kernel evidence in custom blocks; EN10MB"

// Output is every file the generator writes, by name.
func Output() (map[string][]byte, error) {
	caps := Scenarios()
	out := map[string][]byte{}
	for _, c := range caps {
		b, err := c.Encode()
		if err != nil {
			return nil, err
		}
		if _, dup := out[c.Name]; dup {
			return nil, fmt.Errorf("two scenarios write %s", c.Name)
		}
		out[c.Name] = b
	}
	rows, err := Expectations(caps)
	if err != nil {
		return nil, err
	}
	var e strings.Builder
	e.WriteString(ExpectHeader + "\n")
	for _, r := range rows {
		e.WriteString(r.String() + "\n")
	}
	out["EXPECT.tsv"] = []byte(e.String())
	out["README.md"] = []byte(readme(caps))
	return out, nil
}

// Generate writes every file into dir.
func Generate(dir string) error {
	files, err := Output()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func formatName(c *Capture) string {
	switch c.Format {
	case PCAP:
		return "pcap (µs)"
	case PCAPNanos:
		return "pcap (ns)"
	case PCAPBigEndian:
		return "pcap big-endian (µs)"
	case PCAPGzip:
		return "pcap (µs), gzip"
	case PCAPNG:
		return "pcapng (ns)"
	case PCAPNGMulti:
		return "pcapng, 2 interfaces (µs, ns; written by hand)"
	}
	return "?"
}

func linkName(lt layers.LinkType) string {
	switch lt {
	case layers.LinkTypeEthernet:
		return "EN10MB"
	case layers.LinkTypeRaw:
		return "RAW"
	case layers.LinkTypeNull:
		return "NULL"
	case layers.LinkTypeLoop:
		return "LOOP"
	case layers.LinkTypeLinuxSLL:
		return "LINUX_SLL"
	case 276:
		return "LINUX_SLL2"
	}
	return fmt.Sprintf("LINKTYPE %d", lt)
}

func readme(caps []*Capture) string {
	var b strings.Builder
	b.WriteString(`# Test captures

Crafted captures are written by ` + "`internal/testgen`" + ` (gopacket serializer, pcapgo writers; addresses from
the documentation ranges only; base time 2026-03-01T10:00:00Z). Regenerate them with

    go run ./internal/testgen/gen -out testdata/pcaps

and never edit them by hand: ` + "`go test ./internal/testgen/`" + ` regenerates everything and fails if a committed
file differs. ` + "`EXPECT.tsv`" + ` lists, for every crafted file except the showcase, each connection attempt and
what a correct analyser must say about it (columns: file, client, server, client ISN in decimal or "-" when
no client SYN was captured, outcome, client SYNs captured for that ISN with retransmissions but without
duplicate copies, SYN-ACKs from the server, how the connection ended (fin, rst, none: the first FIN or RST
captured; a RST answering a SYN counts), which side sent it, and a note). An ICMP refusal has close "none".
The ` + "`lab-*`" + ` captures are real kernel traffic between two network namespaces, recorded by
` + "`testdata/lab/record.sh`" + ` (tcpdump) and ` + "`testdata/lab/record-kernel.sh`" + ` (` + "`synscope live --write`" + `, with the
server kernel's evidence: the ` + "`lab-kernel-*`" + ` files; see ` + "`testdata/lab/README.md`" + `); they are not in
EXPECT.tsv: the scripts write ` + "`lab-EXPECT.tsv`" + ` for them, with the same columns ("-" leaves a column unchecked).

| file | what it shows | how it was made |
| --- | --- | --- |
`)
	for _, c := range caps {
		lt := linkName(c.LinkType)
		if c.Format == PCAPNGMulti {
			var ls []string
			for _, in := range c.Ifaces {
				ls = append(ls, linkName(in.LinkType))
			}
			lt = strings.Join(ls, " + ")
		}
		how := fmt.Sprintf("testgen; %s; %s", formatName(c), lt)
		if c.Snaplen != 262144 {
			how += fmt.Sprintf("; snaplen %d", c.Snaplen)
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", c.Name, c.Desc, how)
	}
	for _, l := range LabFiles {
		how := l.How
		if how == "" {
			how = "testdata/lab/record.sh (tcpdump -s 256 in the server namespace); pcap (µs); EN10MB"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", l.Name, l.Desc, how)
	}
	b.WriteString("| `EXPECT.tsv` | expected attempts and outcomes of the crafted files (all but the showcase) | testgen, from each scenario's declared outcome and the segments it captured |\n")
	b.WriteString("| `lab-EXPECT.tsv` | expected attempts and outcomes of the lab captures | testdata/lab/expect.py, run by record.sh and record-kernel.sh |\n")
	b.WriteString("| `README.md` | this file | testgen |\n")
	return b.String()
}
