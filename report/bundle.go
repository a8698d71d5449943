package report

// The evidence bundle: a directory with the report in every format and, for
// each incident, a pcapng of its sample attempts' packets, each packet
// commented with why it is there, ready to attach to a ticket.

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/synscope/synscope/analyze"
)

// RawPacket is one captured packet handed back to WriteBundle.
type RawPacket struct {
	Source   int    // index in Report.Sources (PacketRef.Source)
	Num      uint64 // record number in that source (PacketRef.Packet)
	LinkType uint16 // LINKTYPE_* value
	Time     int64  // capture time, ns since the Unix epoch
	Data     []byte // the captured bytes; valid only during the call
	OrigLen  int    // length on the wire
}

// ExtractFunc reads packets back from the report's sources: it calls fn for
// every packet in want (source index → record numbers), and stops at fn's
// first error, returning it. Report does not read captures itself; with the
// capture package the function is
//
//	func(want map[int]map[uint64]bool, fn func(*report.RawPacket) error) error {
//		return capture.Extract(paths, want, func(p *capture.Packet) error {
//			return fn(&report.RawPacket{Source: p.Source, Num: p.Num, LinkType: p.LinkType,
//				Time: p.Time, Data: p.Data, OrigLen: p.OrigLen})
//		})
//	}
//
// where paths are the sources as read, in report.Sources order (a spooled
// file for stdin: capture.Spool).
type ExtractFunc func(want map[int]map[uint64]bool, fn func(p *RawPacket) error) error

// BundleFile is one rendering of the report in a bundle.
type BundleFile struct {
	Name  string // file name in the bundle directory
	Write func(w io.Writer, r *Report) error
}

// DefaultBundleFiles are the renderings a bundle holds unless told otherwise:
// report.md, report.html and report.json.
func DefaultBundleFiles() []BundleFile {
	return []BundleFile{
		{"report.md", WriteMarkdown},
		{"report.html", WriteHTML},
		{"report.json", WriteJSON},
	}
}

// BundleOptions shape an evidence bundle.
type BundleOptions struct {
	// Payload keeps each packet as captured. By default packets are cut
	// after their TCP header (for an ICMP error, after the TCP header it
	// quotes): link, IP and TCP headers stay, the payload goes, and the
	// original length is kept, as a capture with a short snap length would
	// have it.
	Payload bool
	// Anonymizer, when set, rewrites every packet's addresses (Frame)
	// before it is written; a packet it cannot fully rewrite is written
	// without its data, and its comment says so. The report files are
	// written from r as given: the caller anonymises the report first with
	// the same Anonymizer (Anonymizer.Report), so that the report and the
	// packets agree; WriteBundle refuses a report not marked anonymised.
	// Payloads are not rewritten: with Payload set, addresses inside
	// application data stay.
	Anonymizer *Anonymizer
	// Files are the report renderings to write; nil means
	// DefaultBundleFiles, an empty non-nil slice none.
	Files []BundleFile
}

// WriteBundle writes an evidence bundle into dir (created if need be): the
// report files (opt.Files), then incident-N.pcapng for each incident N with
// the packets of its sample attempts (their timelines), read back through
// extract (nil: no pcapng files). Each pcapng has one interface per link
// type, the packets in time order, a comment on each saying why it is there
// ("SYN retransmission 2 of attempt 17", "RST from the server, attempt 17
// (after request)") and a section comment saying what the file is.
//
// Every file is written to a temporary name in dir and renamed into place,
// so a file that is there is complete, even if the run is interrupted. A
// failure does not stop the others: WriteBundle writes what it can and
// returns the failures joined, each naming its file; packets that could not
// be read back are left out, counted in their file's section comment, and
// reported in the error. The sample packets (at most the timeline limit per
// sample attempt) are held in memory until their files are written.
func WriteBundle(dir string, r *Report, opt BundleOptions, extract ExtractFunc) error {
	if opt.Anonymizer != nil && !r.Settings.Anonymized {
		return errors.New("evidence bundle: the report is not anonymised (call Anonymizer.Report on it first)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("evidence bundle: %w", err)
	}
	files := opt.Files
	if files == nil {
		files = DefaultBundleFiles()
	}
	var errs []error
	for _, f := range files {
		err := bundleWriteAtomic(filepath.Join(dir, f.Name), func(w io.Writer) error { return f.Write(w, r) })
		if err != nil {
			errs = append(errs, err)
		}
	}
	if extract == nil || len(r.Incidents) == 0 {
		return errors.Join(errs...)
	}

	want := map[int]map[uint64]bool{}
	for i := range r.Incidents {
		for j := range r.Incidents[i].Samples {
			for _, e := range r.Incidents[i].Samples[j].Timeline {
				m := want[e.Packet.Source]
				if m == nil {
					m = map[uint64]bool{}
					want[e.Packet.Source] = m
				}
				m[e.Packet.Packet] = true
			}
		}
	}
	pkts := make(map[PacketRef]*bundlePacket)
	err := extract(want, func(p *RawPacket) error {
		ref := PacketRef{Source: p.Source, Packet: p.Num}
		if !want[p.Source][p.Num] || pkts[ref] != nil {
			return nil
		}
		bp := &bundlePacket{ref: ref, link: p.LinkType, time: p.Time, origLen: max(p.OrigLen, len(p.Data))}
		data := p.Data
		if !opt.Payload {
			data = data[:bundleHeadersLen(p.LinkType, data, p.OrigLen)]
		}
		bp.data = append([]byte(nil), data...)
		if opt.Anonymizer != nil && !opt.Anonymizer.Frame(p.LinkType, bp.data) {
			bp.data, bp.withheld = nil, true
		}
		pkts[ref] = bp
		return nil
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("evidence bundle: reading packets back: %w", err))
	}
	for i := range r.Incidents {
		inc := &r.Incidents[i]
		path := filepath.Join(dir, "incident-"+strconv.Itoa(inc.ID)+".pcapng")
		err := bundleWriteAtomic(path, func(w io.Writer) error { return writeIncidentPcapng(w, r, inc, pkts, &opt) })
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// bundlePacket is a packet read back, cut and anonymised as the options say.
type bundlePacket struct {
	ref      PacketRef
	link     uint16
	time     int64
	data     []byte
	origLen  int
	withheld bool // not anonymisable: written without data
}

// headersLen is how much of a frame "headers only" keeps: up to the end of
// the (innermost) TCP header, or of the TCP header an ICMP error quotes. A
// frame the analyzer does not see as either is kept whole.
func bundleHeadersLen(lt uint16, data []byte, origLen int) int {
	var d analyze.Decoded
	var t int // offset of the TCP header
	switch analyze.Decode(lt, data, origLen, &d) {
	case analyze.KindTCP:
		t = d.L4Off
	case analyze.KindICMPUnreach:
		q := d.L4Off + 8 // the quoted IP header
		if len(data) <= q {
			return len(data)
		}
		t = q + 40
		if data[q]>>4 == 4 {
			t = q + int(data[q]&0x0f)*4
		}
	default:
		return len(data)
	}
	if len(data) < t+13 {
		return len(data)
	}
	hl := max(int(data[t+12]>>4)*4, 20)
	return min(len(data), t+hl)
}

// writeIncidentPcapng writes one incident's packets.
func writeIncidentPcapng(w io.Writer, r *Report, inc *Incident, pkts map[PacketRef]*bundlePacket, opt *BundleOptions) error {
	type entry struct {
		p        *bundlePacket
		comments []string
	}
	byRef := map[PacketRef]*entry{}
	var list []*entry
	missing, omitted := 0, 0
	for i := range inc.Samples {
		a := &inc.Samples[i]
		omitted += a.TimelineOmitted
		comments := bundleComments(a)
		for k, e := range a.Timeline {
			c := comments[k] + " [" + bundleOrigin(r, e.Packet) + "]"
			if x := byRef[e.Packet]; x != nil {
				x.comments = append(x.comments, c)
				continue
			}
			p := pkts[e.Packet]
			if p == nil {
				missing++
				byRef[e.Packet] = &entry{} // counted once
				continue
			}
			x := &entry{p: p, comments: []string{c}}
			byRef[e.Packet] = x
			list = append(list, x)
		}
	}
	slices.SortStableFunc(list, func(x, y *entry) int {
		return cmp.Or(cmp.Compare(x.p.time, y.p.time), cmp.Compare(x.p.ref.Source, y.p.ref.Source), cmp.Compare(x.p.ref.Packet, y.p.ref.Packet))
	})

	// One interface per link type, in order of appearance.
	var links []uint16
	for _, x := range list {
		if !slices.Contains(links, x.p.link) {
			links = append(links, x.p.link)
		}
	}
	if len(links) == 0 {
		links = []uint16{analyze.LinkEthernet}
	}
	withheld := 0
	for _, x := range list {
		if x.p.withheld {
			withheld++
		}
	}
	iface := func(lt uint16) pcapgo.NgInterface {
		return pcapgo.NgInterface{Name: analyze.LinkTypeName(lt), Description: "link type " + analyze.LinkTypeName(lt) + " (" + strconv.Itoa(int(lt)) + ")",
			LinkType: layers.LinkType(lt), TimestampResolution: 9}
	}
	nw, err := pcapgo.NewNgWriterInterface(w, iface(links[0]), pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		Application: r.Generator,
		Comment:     bundleSectionComment(inc, len(list), missing, omitted, withheld, opt),
	}})
	if err != nil {
		return err
	}
	for _, lt := range links[1:] {
		if _, err := nw.AddInterface(iface(lt)); err != nil {
			return err
		}
	}
	for _, x := range list {
		p := x.p
		comments := x.comments
		if p.withheld {
			comments = append(comments, "packet data withheld: its addresses could not be anonymised")
		}
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, p.time), CaptureLength: len(p.data), Length: p.origLen,
			InterfaceIndex: slices.Index(links, p.link)}
		if err := nw.WritePacketWithOptions(ci, p.data, pcapgo.NgPacketOptions{Comments: comments}); err != nil {
			return err
		}
	}
	return nw.Flush()
}

func bundleSectionComment(inc *Incident, n, missing, omitted, withheld int, opt *BundleOptions) string {
	samples := bundlePlural(len(inc.Samples), "sample attempt", "sample attempts")
	if inc.Attempts > uint64(len(inc.Samples)) {
		samples += " (of " + strconv.FormatUint(inc.Attempts, 10) + " in the incident)"
	}
	// One sentence a line: readable in Wireshark's dialog and flattened by capinfos alike.
	lines := []string{fmt.Sprintf("synscope evidence for incident %d: %s at %s, %s", inc.ID, inc.Kind, inc.Server, samples)}
	if inc.Title != "" {
		lines = append(lines, inc.Title)
	}
	lines = append(lines, bundlePlural(n, "packet", "packets")+" of the sample attempts, in time order; each packet's comment says why it is here")
	if !opt.Payload {
		lines = append(lines, "Headers only: each packet is cut after its TCP header (the original length is kept)")
	}
	if opt.Anonymizer != nil {
		lines = append(lines, "Addresses anonymised (Crypto-PAn, prefix-preserving), as in the report")
	}
	if missing > 0 {
		lines = append(lines, bundlePlural(missing, "packet", "packets")+" could not be read back from the capture")
	}
	if omitted > 0 {
		lines = append(lines, bundlePlural(omitted, "packet", "packets")+" beyond the per-attempt timeline limit are not included")
	}
	if withheld > 0 {
		lines = append(lines, bundlePlural(withheld, "packet", "packets")+" written without data: their addresses could not be anonymised")
	}
	for i, l := range lines {
		if !strings.HasSuffix(l, ".") {
			lines[i] = l + "."
		}
	}
	return strings.Join(lines, "\n")
}

func bundlePlural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// packetOrigin names a packet in its capture: "packet 4 of x.pcap".
func bundleOrigin(r *Report, ref PacketRef) string {
	s := "packet " + strconv.FormatUint(ref.Packet, 10)
	if ref.Source >= 0 && ref.Source < len(r.Sources) {
		name := r.Sources[ref.Source].Path
		if name != "-" {
			name = filepath.Base(name)
		} else {
			name = "stdin"
		}
		return s + " of " + name
	}
	return s + " of source " + strconv.Itoa(ref.Source)
}

// eventComments says why each packet of a's timeline is there: its role,
// numbered where it repeats, and the attempt.
func bundleComments(a *Attempt) []string {
	out := make([]string, len(a.Timeline))
	seen := map[string]int{}
	firstRST := map[string]bool{}
	id := strconv.FormatUint(a.ID, 10)
	for i := range a.Timeline {
		e := &a.Timeline[i]
		seen[e.Note]++
		var c string
		switch e.Note {
		case "SYN":
			c = "SYN of attempt " + id
		case "SYN retransmission", "SYN-ACK retransmission":
			c = e.Note + " " + strconv.Itoa(seen[e.Note]) + " of attempt " + id
			if e.Note == "SYN retransmission" {
				c += " (" + bundleSeconds(e.OffsetMs) + " after the first SYN)"
			}
		case "SYN-ACK":
			c = "SYN-ACK of attempt " + id
			if a.AnsweredSyn != nil && a.Syns > 1 {
				if n := *a.AnsweredSyn; n == 0 {
					c += ", answering the first SYN"
				} else {
					c += ", answering SYN retransmission " + strconv.Itoa(n)
				}
			}
		case "handshake ACK":
			c = "handshake ACK of attempt " + id
		case "first data":
			c = "first data from the " + e.Dir + ", attempt " + id + " (" + bundlePlural(int(e.Len), "byte", "bytes") + ")"
		case "FIN":
			c = "FIN from the " + e.Dir + ", attempt " + id
		case "RST":
			c = "RST from the " + e.Dir + ", attempt " + id
			first := !firstRST[e.Dir]
			firstRST[e.Dir] = true
			switch {
			case a.RefusedBy == "rst" && e.Dir == "server" && first:
				c += " (refusing the SYN)"
			case a.Close == "rst" && a.ClosedBy == e.Dir && first && a.ClosePhase != "" && a.ClosePhase != "none":
				c += " (" + strings.ReplaceAll(a.ClosePhase, "_", " ") + ")"
			}
		case "ICMP unreachable":
			c = bundleICMPComment(a, e) + " for attempt " + id
		case "":
			c = "packet " + e.Flags + " from the " + e.Dir + ", attempt " + id
		default:
			c = e.Note + ", attempt " + id
		}
		if i == 0 {
			c += ": " + a.Client + " -> " + a.Server
		}
		out[i] = c
	}
	return out
}

// seconds formats an offset in ms as seconds ("1 s", "0.25 s").
func bundleSeconds(ms float64) string {
	return strconv.FormatFloat(ms/1000, 'f', -1, 64) + " s"
}

// icmpComment describes an ICMP error: type, code, meaning and sender.
func bundleICMPComment(a *Attempt, e *Event) string {
	var typ, code int
	from := ""
	if a.ICMP != nil {
		typ, code, from = int(a.ICMP.Type), int(a.ICMP.Code), a.ICMP.From
	} else if _, err := fmt.Sscanf(e.Flags, "icmp %d/%d", &typ, &code); err != nil {
		return "ICMP unreachable"
	}
	v6 := strings.HasPrefix(a.Client, "[")
	c := "ICMP"
	if v6 {
		c = "ICMPv6"
	}
	c += " unreachable (type " + strconv.Itoa(typ) + " code " + strconv.Itoa(code)
	if m := unreachMeaning(v6, typ, code); m != "" {
		c += ": " + m
	}
	c += ")"
	if from != "" {
		c += " from " + from
	}
	return c
}

func unreachMeaning(v6 bool, typ, code int) string {
	if v6 {
		names := []string{"no route", "administratively prohibited", "beyond scope of source address", "address unreachable",
			"port unreachable", "source address failed policy", "reject route"}
		if typ != 1 || code < 0 || code >= len(names) {
			return ""
		}
		return names[code]
	}
	if typ != 3 {
		return ""
	}
	switch code {
	case 0:
		return "network unreachable"
	case 1:
		return "host unreachable"
	case 2:
		return "protocol unreachable"
	case 3:
		return "port unreachable"
	case 4:
		return "fragmentation needed"
	case 9, 10:
		return "administratively prohibited"
	case 13:
		return "communication administratively prohibited"
	}
	return ""
}

// writeAtomic writes path through a temporary file in the same directory,
// renamed into place once complete and synced; on failure the temporary
// file is removed and the error names path.
func bundleWriteAtomic(path string, write func(w io.Writer) error) error {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	bw := bufio.NewWriterSize(f, 64<<10)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
