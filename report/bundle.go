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
	// MaxBytes bounds the bundle's total size (0: no bound). The report
	// files are always written whole; the incidents' pcapng files then
	// share what is left, in the report's incident order, each keeping the
	// packets (in time order) that fit: a file cut short says so in its
	// section comment, and a file that cannot hold even its headers is not
	// written. The index of evidence files at the end of report.md (when
	// Files has it) lists each file, its packets and what was cut.
	MaxBytes int64
}

// WriteBundle writes an evidence bundle into dir (created if need be): the
// report files (opt.Files), then incident-N.pcapng for each incident N with
// the packets of its sample attempts (their timelines), read back through
// extract (nil: no pcapng files). Each pcapng has one interface per link
// type, the packets in time order, a comment on each saying why it is there
// ("SYN retransmission 2 of attempt 17", "RST from the server, attempt 17
// (after request)") and a section comment saying what the file is. With
// pcapng files, report.md ends with their index (file, packets, size, what
// was cut by opt.MaxBytes).
//
// Every file is written to a temporary name in dir and renamed into place,
// so a file that is there is complete, even if the run is interrupted or
// the disk is full. A failure does not stop the others: WriteBundle writes
// what it can and returns the failures joined, each naming its file;
// packets that could not be read back are left out, counted in their
// file's section comment, and reported in the error. The sample packets (at
// most the timeline limit per sample attempt) are held in memory until their
// files are written.
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

	// The packets first: the index in report.md says what the pcapng
	// files hold.
	var plans []*bundleFilePlan
	if extract != nil && len(r.Incidents) > 0 {
		pkts, err := bundleReadBack(r, &opt, extract)
		if err != nil {
			errs = append(errs, fmt.Errorf("evidence bundle: reading packets back: %w", err))
		}
		for i := range r.Incidents {
			plans = append(plans, planIncidentFile(r, &r.Incidents[i], pkts))
		}
	}

	// The report files, report.md (and its index) last.
	var used int64
	index := -1
	for i, f := range files {
		if f.Name == "report.md" && len(plans) > 0 {
			index = i
			continue
		}
		n, err := bundleWriteAtomic(filepath.Join(dir, f.Name), func(w io.Writer) error { return f.Write(w, r) })
		used += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	if index >= 0 {
		md := files[index]
		var c bundleCounter
		mdErr := md.Write(&c, r)
		// Room for the index, whatever the plan says in it.
		used += c.n + int64(len(bundleIndex(plans, &opt))) + 64*int64(len(plans)) + 256
		planBundle(plans, r, &opt, opt.MaxBytes-used)
		_, err := bundleWriteAtomic(filepath.Join(dir, md.Name), func(w io.Writer) error {
			if mdErr != nil {
				return mdErr
			}
			if err := md.Write(w, r); err != nil {
				return err
			}
			_, err := io.WriteString(w, bundleIndex(plans, &opt))
			return err
		})
		if err != nil {
			errs = append(errs, err)
		}
	} else {
		planBundle(plans, r, &opt, opt.MaxBytes-used)
	}

	for _, p := range plans {
		if p.skip {
			continue
		}
		path := filepath.Join(dir, p.name)
		_, err := bundleWriteAtomic(path, func(w io.Writer) error { return p.write(w, r, &opt) })
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// bundleReadBack reads the sample attempts' packets back, cut and
// anonymised as opt says.
func bundleReadBack(r *Report, opt *BundleOptions, extract ExtractFunc) (map[PacketRef]*bundlePacket, error) {
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
	return pkts, err
}

// planBundle decides how many packets each incident's file keeps so that
// the files fit in room (opt.MaxBytes 0: all of them), in incident order.
func planBundle(plans []*bundleFilePlan, r *Report, opt *BundleOptions, room int64) {
	for _, p := range plans {
		p.keep = len(p.list)
		p.size = p.sizeWith(r, opt)
		if opt.MaxBytes <= 0 {
			continue
		}
		if p.size > room {
			// The most packets that fit (the size grows with them).
			lo, hi := -1, len(p.list)-1 // p.keep = lo fits (-1: not even none), hi+1 does not
			for lo < hi {
				mid := (lo + hi + 1) / 2
				p.keep = mid
				if p.sizeWith(r, opt) <= room {
					lo = mid
				} else {
					hi = mid - 1
				}
			}
			if lo < 0 {
				p.skip, p.keep, p.size = true, 0, 0
				continue
			}
			p.keep = lo
			p.size = p.sizeWith(r, opt)
		}
		room -= p.size
	}
}

// bundleIndex is the Markdown index of the evidence files appended to
// report.md.
func bundleIndex(plans []*bundleFilePlan, opt *BundleOptions) string {
	var b strings.Builder
	b.WriteString("\n## Evidence files\n\n")
	b.WriteString("Each incident's sample attempts, packet by packet, with a comment on each packet saying why it is there.\n\n")
	b.WriteString("| file | incident | packets | bytes | note |\n|---|---|---|---|---|\n")
	cutFiles, cutPkts := 0, 0
	for _, p := range plans {
		note, pk, size := "", strconv.Itoa(len(p.list)), strconv.FormatInt(p.size, 10)
		switch {
		case p.skip:
			note, pk, size = "not written: the bundle's size limit was reached", "0 of "+pk, "-"
		case p.keep < len(p.list):
			note, pk = bundlePlural(len(p.list)-p.keep, "packet", "packets")+" cut: the bundle's size limit was reached", strconv.Itoa(p.keep)+" of "+pk
		}
		if p.keep < len(p.list) {
			cutFiles++
			cutPkts += len(p.list) - p.keep
		}
		fmt.Fprintf(&b, "| %s | %d: %s at %s | %s | %s | %s |\n", p.name, p.inc.ID, p.inc.Kind, p.inc.Server, pk, size, note)
	}
	if cutFiles > 0 {
		fmt.Fprintf(&b, "\nThe bundle's size limit (%s) cut %s: %s left out. The report files are always whole.\n",
			bundleMiB(opt.MaxBytes), bundlePlural(cutFiles, "file", "files"), bundlePlural(cutPkts, "packet", "packets"))
	}
	return b.String()
}

func bundleMiB(n int64) string {
	if n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// bundleCounter counts what is written to it.
type bundleCounter struct{ n int64 }

func (c *bundleCounter) Write(b []byte) (int, error) {
	c.n += int64(len(b))
	return len(b), nil
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
		t = int(d.L4Off)
	case analyze.KindICMPUnreach:
		q := int(d.L4Off) + 8 // the quoted IP header
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

// bundleEntry is a packet of an incident's file with its comments.
type bundleEntry struct {
	p        *bundlePacket
	comments []string
}

// bundleFilePlan is one incident's pcapng file: its packets in time order,
// and how many of them it keeps.
type bundleFilePlan struct {
	name             string
	inc              *Incident
	list             []*bundleEntry
	links            []uint16
	missing, omitted int
	keep             int   // packets written: list[:keep]
	size             int64 // bytes, with keep packets
	skip             bool  // not written: no room left at all
}

func planIncidentFile(r *Report, inc *Incident, pkts map[PacketRef]*bundlePacket) *bundleFilePlan {
	p := &bundleFilePlan{name: "incident-" + strconv.Itoa(inc.ID) + ".pcapng", inc: inc}
	byRef := map[PacketRef]*bundleEntry{}
	for i := range inc.Samples {
		a := &inc.Samples[i]
		p.omitted += a.TimelineOmitted
		comments := bundleComments(a)
		for k, e := range a.Timeline {
			c := comments[k] + " [" + bundleOrigin(r, e.Packet) + "]"
			if x := byRef[e.Packet]; x != nil {
				x.comments = append(x.comments, c)
				continue
			}
			bp := pkts[e.Packet]
			if bp == nil {
				p.missing++
				byRef[e.Packet] = &bundleEntry{} // counted once
				continue
			}
			x := &bundleEntry{p: bp, comments: []string{c}}
			byRef[e.Packet] = x
			p.list = append(p.list, x)
		}
	}
	slices.SortStableFunc(p.list, func(x, y *bundleEntry) int {
		return cmp.Or(cmp.Compare(x.p.time, y.p.time), cmp.Compare(x.p.ref.Source, y.p.ref.Source), cmp.Compare(x.p.ref.Packet, y.p.ref.Packet))
	})
	// One interface per link type, in order of appearance.
	for _, x := range p.list {
		if !slices.Contains(p.links, x.p.link) {
			p.links = append(p.links, x.p.link)
		}
	}
	if len(p.links) == 0 {
		p.links = []uint16{analyze.LinkEthernet}
	}
	p.keep = len(p.list)
	return p
}

// sizeWith is the file's size with p.keep packets.
func (p *bundleFilePlan) sizeWith(r *Report, opt *BundleOptions) int64 {
	var c bundleCounter
	p.write(&c, r, opt)
	return c.n
}

// write writes the file's first p.keep packets.
func (p *bundleFilePlan) write(w io.Writer, r *Report, opt *BundleOptions) error {
	list := p.list[:p.keep]
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
	comment := bundleSectionComment(p.inc, len(list), p.missing, p.omitted, withheld, opt)
	if cut := len(p.list) - p.keep; cut > 0 {
		comment += "\n" + bundlePlural(cut, "later packet", "later packets") + " of the sample attempts left out: the bundle's size limit (" + bundleMiB(opt.MaxBytes) + ") was reached."
	}
	nw, err := pcapgo.NewNgWriterInterface(w, iface(p.links[0]), pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		Application: r.Generator,
		Comment:     comment,
	}})
	if err != nil {
		return err
	}
	for _, lt := range p.links[1:] {
		if _, err := nw.AddInterface(iface(lt)); err != nil {
			return err
		}
	}
	for _, x := range list {
		bp := x.p
		comments := x.comments
		if bp.withheld {
			comments = append(comments, "packet data withheld: its addresses could not be anonymised")
		}
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, bp.time), CaptureLength: len(bp.data), Length: bp.origLen,
			InterfaceIndex: slices.Index(p.links, bp.link)}
		if err := nw.WritePacketWithOptions(ci, bp.data, pcapgo.NgPacketOptions{Comments: comments}); err != nil {
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

// bundleWriteAtomic writes path through a temporary file in the same
// directory, renamed into place once complete and synced; on failure (a
// full disk: ENOSPC) the temporary file is removed, nothing is left under
// path's name, and the error names path. It returns the bytes written.
func bundleWriteAtomic(path string, write func(w io.Writer) error) (int64, error) {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return 0, fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	c := &bundleCountingWriter{w: f}
	bw := bufio.NewWriterSize(c, 64<<10)
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
		return 0, fmt.Errorf("writing %s: %w", path, err)
	}
	return c.n, nil
}

type bundleCountingWriter struct {
	w io.Writer
	n int64
}

func (c *bundleCountingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
