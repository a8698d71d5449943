package capture

// LiveConfig says what a live engine captures.
type LiveConfig struct {
	// Interface to capture on; "any" captures on all interfaces of the
	// namespace (as cooked Linux SLL frames).
	Interface string
	// Netns is the network namespace to capture in: a name under
	// /var/run/netns, or a path to a namespace file (/proc/PID/ns/net).
	// "" is the namespace of the calling process.
	Netns string
	// Snaplen is the most bytes kept of each frame (default 256).
	Snaplen int
	// Ports keeps only TCP segments (and ICMP errors quoting them) with one
	// of these ports as source or destination; empty keeps all ports.
	Ports []uint16
	// BufferMB is the size of the kernel ring in MiB (default 8).
	BufferMB int
}

// LiveStats counts what the kernel saw for a live source, accumulated since
// it was opened.
type LiveStats struct {
	Received uint64 // packets that passed the filter (including Dropped)
	Dropped  uint64 // passed the filter but found the ring full
	// Lost is what else the kernel side lost: events the eBPF ring buffer
	// had no room for, libpcap's interface drops.
	Lost uint64
	// Freezes is how often an AF_PACKET ring froze its queue
	// (tp_freeze_q_cnt): a count of episodes, the packets are in Dropped.
	Freezes uint64
}

// LiveSource is a packet source reading a live interface. Its Next blocks
// until a packet arrives, the context given at open is cancelled, or Close is
// called; the last two make Next return io.EOF.
type LiveSource interface {
	Source
	Stats() LiveStats
}

// DefaultSnaplen and DefaultBufferMB are the LiveConfig defaults.
const (
	DefaultSnaplen  = 256
	DefaultBufferMB = 8
)
