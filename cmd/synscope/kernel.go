package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/synscope/synscope/capture"
)

// kernelFeed is a live run's kernel evidence: the tracepoint events (drops
// with their reasons, SYN-ACK retransmits, resets) and the counter sampler
// of the watched namespace. Both are packet sources of link type
// kevent.LinkType that run beside the capture engine, so their records
// reach the analysis, and the --write file, the way packets do.
type kernelFeed struct {
	events  *capture.KernelSource
	sampler *capture.Sampler
	// missing says what evidence could not be collected, and why: the
	// report shows it.
	missing []string
}

// openKernelFeed starts what it can; what fails goes to missing (the
// capture goes on without it).
func openKernelFeed(ctx context.Context, cfg *liveConfig) *kernelFeed {
	kf := &kernelFeed{}
	if !cfg.kernel {
		kf.missing = append(kf.missing, "kernel evidence: not collected (--kernel=false)")
		return kf
	}
	if os.Geteuid() != 0 {
		kf.missing = append(kf.missing, "kernel evidence: not running as root; tracepoints and the namespace's counters may be refused")
	}
	src, err := capture.OpenKernel(ctx, capture.KernelConfig{Netns: cfg.live.Netns, Ports: cfg.live.Ports})
	if err != nil {
		kf.missing = append(kf.missing, "tracepoints (drops and their reasons, SYN-ACK retransmits, resets): "+err.Error())
	} else {
		kf.events = src.(*capture.KernelSource)
		for _, n := range kf.events.Notes() {
			kf.missing = append(kf.missing, "tracepoints: "+n)
		}
	}
	s, err := capture.OpenSampler(ctx, cfg.live.Netns, cfg.sampleEvery)
	if err != nil {
		kf.missing = append(kf.missing, "counters, settings and listeners: "+err.Error())
	} else {
		kf.sampler = s
	}
	return kf
}

// sources lists what runs.
func (kf *kernelFeed) sources() []capture.Source {
	var out []capture.Source
	if kf.events != nil {
		out = append(out, kf.events)
	}
	if kf.sampler != nil {
		out = append(out, kf.sampler)
	}
	return out
}

// sampleNow asks for a counter sample now (an incident opened).
func (kf *kernelFeed) sampleNow() {
	if kf.sampler != nil {
		kf.sampler.SampleNow()
	}
}

// lost counts kernel events the tracepoints' ring had no room for.
func (kf *kernelFeed) lost() uint64 {
	if kf.events == nil {
		return 0
	}
	return kf.events.Stats().Lost
}

// stop ends the sources: each hands out what it still holds (the sampler a
// last sample), then io.EOF.
func (kf *kernelFeed) stop() {
	for _, s := range kf.sources() {
		s.Close()
	}
}

// describe says on stderr what kernel evidence the run collects.
func (kf *kernelFeed) describe(w io.Writer, netns string) {
	var on []string
	if kf.events != nil {
		on = append(on, "tracepoints")
	}
	if kf.sampler != nil {
		on = append(on, "counters")
	}
	where := "this namespace"
	if netns != "" {
		where = "namespace " + netns
	}
	if len(on) > 0 {
		fmt.Fprintf(w, "synscope: kernel evidence from %s: %v\n", where, on)
	}
	for _, m := range kf.missing {
		fmt.Fprintf(w, "synscope: %s\n", m)
	}
}

// pumpSource copies a source's records into the queue until it ends,
// counting what found the queue full. The queue is shared with the engine.
func pumpSource(src capture.Source, queue chan<- livePacket, lost func()) error {
	var p capture.Packet
	for {
		if err := src.Next(&p); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		lp := livePacket{data: append([]byte(nil), p.Data...), time: p.Time, origLen: p.OrigLen, link: p.LinkType}
		select {
		case queue <- lp:
		default:
			lost()
		}
	}
}

// defaultSampleEvery is how often the counters are sampled beside the
// samples taken when an incident opens and at the start and end.
const defaultSampleEvery = 5 * time.Second
