package report

// Incidents, the verdict and the time series: what a reader who did not
// capture the traffic needs first. analyze builds them; this file is their
// JSON shape, shared by every format.

// Incident is a group of anomalous attempts of one kind against one server
// endpoint, close in time (a quiet gap longer than the incident gap splits).
type Incident struct {
	ID       int    `json:"id"`
	Kind     string `json:"kind"`     // unanswered_syn, syn_retransmit, synack_retransmit, refused, reset, healthcheck_rst, slow_response, timestamps
	Severity string `json:"severity"` // critical, warning, notable
	Title    string `json:"title"`    // one line, for a reader who did not capture the traffic
	Start    string `json:"start"`
	End      string `json:"end"`
	Server   string `json:"server"` // ip:port (ip alone for host-wide findings)
	// Attempts in the incident; Clients distinct client addresses among
	// them; ServerAttempts all attempts to the server endpoint in the same
	// window, and Share = Attempts / ServerAttempts.
	Attempts       uint64  `json:"attempts"`
	Clients        uint64  `json:"clients"`
	ServerAttempts uint64  `json:"server_attempts"`
	Share          float64 `json:"share"`
	// Kind-specific facts.
	Schedule       string            `json:"retransmit_schedule,omitempty"` // e.g. "0, 1, 3 s"
	DelayP50Ms     *float64          `json:"delay_p50_ms,omitempty"`
	DelayMaxMs     *float64          `json:"delay_max_ms,omitempty"`
	BySide         map[string]uint64 `json:"by_side,omitempty"`  // reset: client/server; refused: rst/icmp
	ByPhase        map[string]uint64 `json:"by_phase,omitempty"` // reset: before_data, after_request, after_response
	Prober         string            `json:"prober,omitempty"`   // healthcheck_rst
	IntervalS      *float64          `json:"interval_s,omitempty"`
	JitterMs       *float64          `json:"jitter_ms,omitempty"`
	Timestamps     *TSFinding        `json:"timestamps,omitempty"`
	Samples        []Attempt         `json:"samples"`  // a few attempts, with packet timelines
	Evidence       []string          `json:"evidence"` // facts behind the incident, one per line
	Causes         []Cause           `json:"causes"`   // ranked suspected causes
	SamplesOmitted uint64            `json:"samples_omitted,omitempty"`
	// Kernel is what the watched host's kernel said about the incident's
	// attempts: drops and reasons, counters, listener, findings.
	Kernel *IncidentKernel `json:"kernel,omitempty"`
}

// TSFinding is the timestamp-option finding for one server.
type TSFinding struct {
	SynsOffering     uint64   `json:"syns_offering"` // attempts whose SYN carried the option
	SynsNotOffering  uint64   `json:"syns_not_offering"`
	SynacksWithTS    uint64   `json:"synacks_with_ts"` // of the answered offering attempts
	SynacksWithoutTS uint64   `json:"synacks_without_ts"`
	UnansweredWithTS *float64 `json:"unanswered_rate_with_ts,omitempty"`
	UnansweredNoTS   *float64 `json:"unanswered_rate_without_ts,omitempty"`
	// PAWSRejects: attempts whose SYN the server's kernel dropped by PAWS.
	PAWSRejects uint64 `json:"paws_rejects,omitempty"`
}

// Cause is one suspected cause, with how sure we are, the evidence lines
// that support it and what to check next.
type Cause struct {
	Cause      string   `json:"cause"`
	Confidence string   `json:"confidence"` // high, medium, low
	Evidence   []string `json:"evidence,omitempty"`
	Check      string   `json:"check"`
}

// Verdict says where the failed or slow attempts went.
type Verdict struct {
	Rows []VerdictRow `json:"rows"`
}

// VerdictRow is one destination of trouble.
type VerdictRow struct {
	Category  string  `json:"category"` // lost_in_handshake, answered_late, refused, abandoned, reset, slow_application, healthcheck_rst
	Meaning   string  `json:"meaning"`
	Attempts  uint64  `json:"attempts"`
	Share     float64 `json:"share"` // of all attempts
	Incidents []int   `json:"incidents"`
}

// Series are per-bucket counts across the capture, for charts.
type Series struct {
	BucketS           float64  `json:"bucket_s"`
	Start             string   `json:"start"`
	Attempts          []uint64 `json:"attempts"`
	Unanswered        []uint64 `json:"unanswered"`
	SynRetransmits    []uint64 `json:"syn_retransmits"`
	SynackRetransmits []uint64 `json:"synack_retransmits"`
	Resets            []uint64 `json:"resets"`
}

// Histogram is a distribution over fixed bucket bounds (ms): Counts[i] counts
// values below Bounds[i] (and at or above Bounds[i-1]); the last count is
// for values at or above the last bound.
type Histogram struct {
	Bounds []float64 `json:"bounds_ms"`
	Counts []uint64  `json:"counts"`
	Count  uint64    `json:"count"`
	P50Ms  *float64  `json:"p50_ms,omitempty"`
	P90Ms  *float64  `json:"p90_ms,omitempty"`
	P99Ms  *float64  `json:"p99_ms,omitempty"`
}

// Distributions of handshake RTT and time to first byte.
type Distributions struct {
	HandshakeRTT Histogram `json:"handshake_rtt"`
	TTFB         Histogram `json:"ttfb"`
}
