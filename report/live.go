package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Lost is how many events a live run lost before the analysis (0 for nil).
func (lc *LiveCapture) Lost() uint64 {
	if lc == nil {
		return 0
	}
	return lc.LostKernel + lc.LostQueue
}

// LostBy says where a live run's events were lost.
func (lc *LiveCapture) LostBy() string {
	var parts []string
	if lc.LostKernel > 0 {
		what := "the engine's kernel buffer was full"
		switch lc.Engine {
		case "ebpf":
			what = "the eBPF ring buffer was full"
		case "afpacket":
			what = "the AF_PACKET ring was full"
		case "pcap":
			what = "libpcap's buffer was full, or the interface dropped them"
		}
		parts = append(parts, fmt.Sprintf("%d in the kernel (%s: synscope's reader fell behind; a larger --buffer-mb helps)", lc.LostKernel, what))
	}
	if lc.LostQueue > 0 {
		parts = append(parts, fmt.Sprintf("%d in synscope's queue (the analysis fell behind)", lc.LostQueue))
	}
	return strings.Join(parts, ", ")
}

// Notes says what went wrong with a live capture, for the head of a report:
// events lost and where, the interface going away, the --write file stopping
// short. None when all went well (or lc is nil).
func (lc *LiveCapture) Notes() []string {
	if lc == nil {
		return nil
	}
	var notes []string
	if n := lc.Lost(); n > 0 {
		what := strconv.FormatUint(n, 10) + " events"
		if n == 1 {
			what = "1 event"
		}
		notes = append(notes, fmt.Sprintf("LOST %s during the live capture: %s; the report covers what arrived", what, lc.LostBy()))
	}
	if lc.InterfaceGone != "" {
		at := lc.InterfaceGone
		if t, err := time.Parse(time.RFC3339Nano, at); err == nil {
			at = t.UTC().Format("2006-01-02 15:04:05.000 UTC")
		}
		notes = append(notes, fmt.Sprintf("The interface %s went away at %s: the capture stopped there; the report covers what was captured before", lc.Interface, at))
	}
	if wr := lc.Write; wr != nil && wr.Stopped != "" {
		notes = append(notes, fmt.Sprintf("The evidence file %s stopped after packet %d (%s); it is valid up to there, the capture went on", wr.Path, wr.Packets, wr.Stopped))
	}
	return notes
}
