// Package report renders analysis results: the JSON document (schema
// synscope/v1) is the model every other format is rendered from, so a saved
// JSON report can be rendered again later without the capture.
package report

import (
	"math"
	"time"

	"github.com/synscope/synscope/analyze"
)

// Schema names the JSON document's shape.
const Schema = "synscope/v1"

// Report is the whole analysis result.
type Report struct {
	Schema    string     `json:"schema"`
	Generator string     `json:"generator"`
	Filter    string     `json:"filter,omitempty"`
	Sources   []Source   `json:"sources"`
	Summary   Summary    `json:"summary"`
	Settings  Settings   `json:"settings"`
	Verdict   Verdict    `json:"verdict"`
	Incidents []Incident `json:"incidents"`
	// IncidentsOmitted counts incidents beyond the cap (--max-incidents).
	IncidentsOmitted uint64 `json:"incidents_omitted,omitempty"`
	// Bounds of the incident layer that were reached: attempts to servers
	// beyond its table of 4,096 server endpoints (not counted per server),
	// and client/server pairs beyond 65,536 not watched for periodic probing.
	ServersNotCounted uint64         `json:"servers_not_counted,omitempty"`
	ProbersNotWatched uint64         `json:"probers_not_watched,omitempty"`
	Series            *Series        `json:"series,omitempty"`
	Distributions     *Distributions `json:"distributions,omitempty"`
	Live              *LiveCapture   `json:"live,omitempty"` // live runs only: how the capture itself went
	Attempts          []Attempt      `json:"attempts"`
	// Listing says which attempts are in Attempts: "anomalous" or "all";
	// AttemptsOmitted counts those left out by the listing cap.
	Listing         string `json:"listing"`
	AttemptsOmitted uint64 `json:"attempts_omitted"`
	// Kernel is what the watched host's kernel said during a live capture
	// (absent for captures without kernel evidence).
	Kernel *Kernel `json:"kernel,omitempty"`
}

// Settings records the knobs that shaped the verdicts.
type Settings struct {
	SynTimeoutS      float64 `json:"syn_timeout_s"`
	HandshakeIdleS   float64 `json:"handshake_idle_s"`
	EstablishedIdleS float64 `json:"established_idle_s"`
	MaxFlows         int     `json:"max_flows"`
	MaxSYNOnly       int     `json:"max_syn_only"`
	MaxListed        int     `json:"max_listed"`
	IncidentGapS     float64 `json:"incident_gap_s"`
	SlowS            float64 `json:"slow_s"`
	Anonymized       bool    `json:"anonymized,omitempty"`
}

// Source is one input and what was read from it.
type Source struct {
	Path       string   `json:"path"`
	Format     string   `json:"format"`
	Compressed bool     `json:"compressed,omitempty"`
	LinkTypes  []string `json:"link_types"`
	Packets    uint64   `json:"packets"`
	Bytes      int64    `json:"bytes"`
	First      string   `json:"first,omitempty"`
	Last       string   `json:"last,omitempty"`
	Error      string   `json:"error,omitempty"`
	// Anomalies counts records that break the format but were read anyway.
	Anomalies    uint64 `json:"anomalies,omitempty"`
	FirstAnomaly string `json:"first_anomaly,omitempty"`
}

// LiveCapture is what a live run says about its own capture: where events
// were lost (the two add up to summary.lost_events), whether the interface
// went away, and how much of it the --write file holds.
type LiveCapture struct {
	Interface string `json:"interface"`
	Engine    string `json:"engine"`
	// LostKernel: dropped in the kernel, the engine's buffer being full
	// (eBPF ring buffer, AF_PACKET ring, libpcap buffer; libpcap also
	// counts the interface's own drops here).
	LostKernel uint64 `json:"lost_kernel"`
	// LostQueue: synscope's queue between the engine and the analysis was
	// full (the analysis fell behind).
	LostQueue uint64 `json:"lost_queue"`
	// InterfaceGone is when the interface went away (RFC 3339); the
	// capture stopped there.
	InterfaceGone string `json:"interface_gone,omitempty"`
	// Write is the --write file: its packets, and why it stopped short.
	Write *LiveWrite `json:"write,omitempty"`
}

// LiveWrite is the pcapng file a live run kept its packets in.
type LiveWrite struct {
	Path    string `json:"path"`
	Packets uint64 `json:"packets"` // packets in the file, each a whole block
	// Stopped says why the file holds fewer packets than were captured
	// (e.g. "no space left on device"); "" when it holds them all.
	Stopped string `json:"stopped,omitempty"`
}

// Outcomes counts attempts by outcome.
type Outcomes struct {
	Established             uint64 `json:"established"`
	AnsweredAfterRetransmit uint64 `json:"answered_after_retransmit"`
	Unanswered              uint64 `json:"unanswered"`
	Refused                 uint64 `json:"refused"`
	Abandoned               uint64 `json:"abandoned"`
	Undetermined            uint64 `json:"undetermined"`
	Partial                 uint64 `json:"partial"`
}

// Get returns the count for one outcome.
func (o *Outcomes) Get(x analyze.Outcome) uint64 { return *o.field(x) }

func (o *Outcomes) field(x analyze.Outcome) *uint64 {
	switch x {
	case analyze.OutcomeEstablished:
		return &o.Established
	case analyze.OutcomeAnsweredAfterRetransmit:
		return &o.AnsweredAfterRetransmit
	case analyze.OutcomeUnanswered:
		return &o.Unanswered
	case analyze.OutcomeRefused:
		return &o.Refused
	case analyze.OutcomeAbandoned:
		return &o.Abandoned
	case analyze.OutcomeUndetermined:
		return &o.Undetermined
	}
	return &o.Partial
}

// Sum is the total over all outcomes (it equals the attempts).
func (o *Outcomes) Sum() uint64 {
	var n uint64
	for x := analyze.Outcome(0); x < analyze.NumOutcomes; x++ {
		n += o.Get(x)
	}
	return n
}

// BySide counts by which end did something.
type BySide struct {
	ByClient uint64 `json:"by_client"`
	ByServer uint64 `json:"by_server"`
}

// TSCounts counts handshake packets carrying the timestamp option.
type TSCounts struct {
	SynWithTS    uint64 `json:"syn_with_ts"`
	SynackWithTS uint64 `json:"synack_with_ts"`
}

// Summary is the per-capture count of everything.
type Summary struct {
	Packets              uint64            `json:"packets"`
	TCPPackets           uint64            `json:"tcp_packets"`
	Attempts             uint64            `json:"attempts"`
	SynPackets           uint64            `json:"syn_packets"`
	SynRetransmits       uint64            `json:"syn_retransmits"`
	SynackPackets        uint64            `json:"synack_packets"`
	SynackRetransmits    uint64            `json:"synack_retransmits"`
	Evicted              uint64            `json:"evicted"`
	Outcomes             Outcomes          `json:"outcomes"`
	ResetsAfterHandshake BySide            `json:"resets_after_handshake"`
	Timestamps           TSCounts          `json:"timestamps"`
	Duplicates           uint64            `json:"duplicates"`
	Fragments            uint64            `json:"ip_fragments"`
	ICMPUnreachable      uint64            `json:"icmp_unreachable"`
	Malformed            uint64            `json:"malformed"`
	Unsupported          uint64            `json:"unsupported_link_packets"`
	UnsupportedLinks     map[string]uint64 `json:"unsupported_link_types,omitempty"`
	NonTCP               uint64            `json:"non_tcp"`
	Filtered             uint64            `json:"filtered_out"`
	OutOfOrder           uint64            `json:"out_of_order_timestamps"`
	// LostEvents (live runs): packets or events the capture engine, the
	// kernel or synscope's queue could not keep.
	LostEvents uint64  `json:"lost_events"`
	First      string  `json:"first,omitempty"`
	Last       string  `json:"last,omitempty"`
	DurationS  float64 `json:"duration_s"`
}

// Attempt is one connection attempt as reported.
type Attempt struct {
	ID           uint64    `json:"id"`
	Client       string    `json:"client"`
	Server       string    `json:"server"`
	VLAN         []uint16  `json:"vlan"`
	ISN          uint32    `json:"isn"`
	ServerISN    *uint32   `json:"server_isn"`
	Start        string    `json:"start"`
	End          string    `json:"end"`
	Syns         int       `json:"syns"`
	Synacks      int       `json:"synacks"`
	SynOffsetsMs []float64 `json:"syn_offsets_ms"`
	AnsweredSyn  *int      `json:"answered_syn"`
	Outcome      string    `json:"outcome"`
	ConnState    string    `json:"conn_state"`
	History      string    `json:"history"`
	// ZeekOrigIsServer: Zeek would take the server for the originator (a
	// capture that starts mid-connection), so conn_state and history are
	// written from that side, as its conn.log would show them.
	ZeekOrigIsServer  bool      `json:"zeek_orig_is_server,omitempty"`
	Close             string    `json:"close"`
	ClosedBy          string    `json:"closed_by"`
	ClosePhase        string    `json:"close_phase"`
	RefusedBy         string    `json:"refused_by,omitempty"`
	ICMP              *ICMP     `json:"icmp,omitempty"`
	HandshakeRTTMs    *float64  `json:"handshake_rtt_ms"`
	ServerRTTMs       *float64  `json:"server_rtt_ms"`
	ClientRTTMs       *float64  `json:"client_rtt_ms"`
	RetransmitDelayMs *float64  `json:"retransmit_delay_ms"`
	TTFBMs            *float64  `json:"ttfb_ms"`
	BytesClient       uint64    `json:"bytes_client"`
	BytesServer       uint64    `json:"bytes_server"`
	PacketsClient     uint64    `json:"packets_client"`
	PacketsServer     uint64    `json:"packets_server"`
	TSSyn             *bool     `json:"ts_syn"`
	TSSynack          *bool     `json:"ts_synack"`
	SynOptions        *Options  `json:"syn_options,omitempty"`
	SynackOptions     *Options  `json:"synack_options,omitempty"`
	Flags             []string  `json:"flags,omitempty"`
	FirstPacket       PacketRef `json:"first_packet"`
	Timeline          []Event   `json:"timeline,omitempty"`
	TimelineOmitted   int       `json:"timeline_omitted,omitempty"`
	// Kernel: what the watched host's kernel said about this attempt.
	Kernel *AttemptKernel `json:"kernel,omitempty"`
}

// ICMP describes an ICMP error that refused an attempt.
type ICMP struct {
	Type uint8  `json:"type"`
	Code uint8  `json:"code"`
	From string `json:"from"`
}

// Options are a handshake packet's TCP options. Unknown means the option
// list was cut by the snap length: what is not listed may still have been there.
type Options struct {
	Unknown   bool    `json:"unknown,omitempty"`
	MSS       *uint16 `json:"mss,omitempty"`
	WScale    *uint8  `json:"wscale,omitempty"`
	SACKPerm  bool    `json:"sack_perm,omitempty"`
	TSval     *uint32 `json:"tsval,omitempty"`
	TSecr     *uint32 `json:"tsecr,omitempty"`
	TFO       bool    `json:"tfo,omitempty"`
	TFOCookie uint8   `json:"tfo_cookie_len,omitempty"`
}

// PacketRef names a packet: the source's index in Sources and its record number.
type PacketRef struct {
	Source int    `json:"source"`
	Packet uint64 `json:"packet"`
}

// Event is one packet of an attempt's timeline.
type Event struct {
	Time     string    `json:"time"`
	OffsetMs float64   `json:"offset_ms"`
	Dir      string    `json:"dir"`
	Flags    string    `json:"flags"`
	Seq      uint32    `json:"seq"`
	Ack      uint32    `json:"ack"`
	Len      uint32    `json:"len"`
	Win      uint16    `json:"win"`
	Note     string    `json:"note,omitempty"`
	Options  *Options  `json:"options,omitempty"`
	Packet   PacketRef `json:"packet"`
}

// TimeString formats a capture time (ns since the epoch) as RFC 3339 UTC.
func TimeString(ns int64) string {
	if ns == 0 {
		return ""
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

func ms(d time.Duration) *float64 {
	v := math.Round(float64(d)/1e3) / 1e3 // microsecond precision
	return &v
}

// NewSummary converts the analyzer's counts.
func NewSummary(s *analyze.Summary) Summary {
	out := Summary{
		Packets:              s.Packets,
		TCPPackets:           s.TCPPackets,
		Attempts:             s.Attempts,
		SynPackets:           s.SynPackets,
		SynRetransmits:       s.SynRetransmits,
		SynackPackets:        s.SynAckPackets,
		SynackRetransmits:    s.SynAckRetransmits,
		Evicted:              s.Evicted,
		ResetsAfterHandshake: BySide{ByClient: s.ResetsByClient, ByServer: s.ResetsByServer},
		Timestamps:           TSCounts{SynWithTS: s.SynWithTS, SynackWithTS: s.SynAckWithTS},
		Duplicates:           s.Duplicates,
		Fragments:            s.Fragments,
		ICMPUnreachable:      s.ICMPUnreach,
		Malformed:            s.Malformed,
		Unsupported:          s.Unsupported,
		NonTCP:               s.NonTCP,
		Filtered:             s.Filtered,
		OutOfOrder:           s.OutOfOrder,
		First:                TimeString(s.First),
		Last:                 TimeString(s.Last),
	}
	for x := analyze.Outcome(0); x < analyze.NumOutcomes; x++ {
		*out.Outcomes.field(x) = s.Outcomes[x]
	}
	if s.Last > s.First {
		out.DurationS = math.Round(float64(s.Last-s.First)/1e6) / 1e3
	}
	if len(s.UnsupportedLinks) > 0 {
		out.UnsupportedLinks = make(map[string]uint64, len(s.UnsupportedLinks))
		for lt, n := range s.UnsupportedLinks {
			out.UnsupportedLinks[analyze.LinkTypeName(lt)] = n
		}
	}
	return out
}

func triPtr(t analyze.Tri) *bool {
	switch t {
	case analyze.TriYes:
		v := true
		return &v
	case analyze.TriNo:
		v := false
		return &v
	}
	return nil
}

func newOptions(o *analyze.Options) *Options {
	out := &Options{Unknown: o.Unknown, SACKPerm: o.SACKPerm, TFO: o.TFO, TFOCookie: o.TFOCookie}
	if o.HasMSS {
		v := o.MSS
		out.MSS = &v
	}
	if o.HasWScale {
		v := o.WScale
		out.WScale = &v
	}
	if o.HasTS {
		v, e := o.TSval, o.TSecr
		out.TSval, out.TSecr = &v, &e
	}
	return out
}

// FlagString renders TCP flags the way tcpdump does ("S.", "R.", "F.", "P.").
func FlagString(f uint8) string {
	var b []byte
	for _, x := range []struct {
		bit uint8
		c   byte
	}{{analyze.FlagSYN, 'S'}, {analyze.FlagFIN, 'F'}, {analyze.FlagRST, 'R'}, {analyze.FlagPSH, 'P'}, {analyze.FlagURG, 'U'}, {analyze.FlagECE, 'E'}, {analyze.FlagCWR, 'W'}} {
		if f&x.bit != 0 {
			b = append(b, x.c)
		}
	}
	if f&analyze.FlagACK != 0 {
		b = append(b, '.')
	}
	if len(b) == 0 {
		return "none"
	}
	return string(b)
}

// NewAttempt converts a finished attempt. withTimeline adds its packets.
func NewAttempt(a *analyze.Attempt, withTimeline bool) Attempt {
	out := Attempt{
		ID:               a.ID,
		Client:           a.Client.String(),
		Server:           a.Server.String(),
		VLAN:             a.VLANs(),
		ISN:              a.ISN,
		Start:            TimeString(a.Start),
		End:              TimeString(a.End),
		Syns:             a.Syns,
		Synacks:          a.SynAcks,
		Outcome:          a.Outcome.String(),
		ConnState:        a.ConnState(),
		History:          a.History(),
		ZeekOrigIsServer: a.ZeekOrigIsServer(),
		Close:            a.Close.String(),
		ClosedBy:         a.ClosedBy.String(),
		ClosePhase:       a.ClosePhase.String(),
		BytesClient:      a.BytesClient,
		BytesServer:      a.BytesServer,
		PacketsClient:    a.PktsClient,
		PacketsServer:    a.PktsServer,
		TSSyn:            triPtr(a.SynTS),
		TSSynack:         triPtr(a.SynAckTS),
		FirstPacket:      PacketRef{Source: int(a.First.Source), Packet: a.First.Num},
		Kernel:           newAttemptKernel(&a.Kernel),
	}
	if a.HasServerISN {
		v := a.ServerISN
		out.ServerISN = &v
	}
	for _, d := range a.SynOffsets() {
		out.SynOffsetsMs = append(out.SynOffsetsMs, *ms(d))
	}
	if a.AnsweredSyn >= 0 {
		v := int(a.AnsweredSyn)
		out.AnsweredSyn = &v
	}
	if a.Refused != analyze.RefusedNone {
		out.RefusedBy = a.Refused.String()
		if a.Refused == analyze.RefusedICMP {
			out.ICMP = &ICMP{Type: a.ICMPType, Code: a.ICMPCode, From: a.ICMPFrom.String()}
		}
	}
	if s, c, ok := a.HandshakeRTT(); ok {
		out.HandshakeRTTMs = ms(s + c)
		out.ServerRTTMs = ms(s)
		out.ClientRTTMs = ms(c)
	}
	if a.Outcome == analyze.OutcomeAnsweredAfterRetransmit {
		out.RetransmitDelayMs = ms(a.RetransmitDelay())
	}
	if d, ok := a.TTFB(); ok {
		out.TTFBMs = ms(d)
	}
	if a.Syns > 0 {
		out.SynOptions = newOptions(&a.SynOpts)
	}
	if a.SynAcks > 0 {
		out.SynackOptions = newOptions(&a.SynAckOpts)
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{a.SynOpts.TFO, "tfo"}, {a.SynData > 0, "data_on_syn"}, {a.SimOpen, "simultaneous_open"}, {a.Reordered, "synack_before_syn"}, {a.OneSided, "handshake_inferred"}, {a.StaleACKs > 0, "stale_server_state"}, {a.Evicted, "evicted"}} {
		if f.on {
			out.Flags = append(out.Flags, f.name)
		}
	}
	if withTimeline {
		for i := range a.Timeline {
			e := &a.Timeline[i]
			ev := Event{
				Time:     TimeString(e.Time),
				OffsetMs: *ms(time.Duration(e.Time - a.Start)),
				Dir:      e.Dir.String(),
				Flags:    FlagString(e.Flags),
				Seq:      e.Seq,
				Ack:      e.Ack,
				Len:      e.Len,
				Win:      e.Win,
				Note:     e.Note.String(),
				Packet:   PacketRef{Source: int(e.Ref.Source), Packet: e.Ref.Num},
			}
			if e.Note == analyze.NoteICMP {
				ev.Flags = "icmp " + itoa(int(e.ICMP[0])) + "/" + itoa(int(e.ICMP[1]))
			} else if e.Flags&analyze.FlagSYN != 0 {
				ev.Options = newOptions(&e.Opts)
			}
			out.Timeline = append(out.Timeline, ev)
		}
		out.TimelineOmitted = a.Truncated
	}
	return out
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
