package analyze

// Pipeline splits the analysis over two goroutines: the caller's reads and
// decodes (Packet), a second one tracks. Decoded segments travel in batches,
// so the hand-over costs a channel operation per batch, not per packet. The
// tracker sees the packets in exactly the caller's order, so the verdicts are
// those of Analyzer.Packet, run after run.
type Pipeline struct {
	an   *Analyzer
	cur  *batch
	full chan *batch
	free chan *batch
	done chan struct{}
}

// batchSize trades hand-over cost against the latency of a live capture.
const (
	batchSize = 256
	batches   = 8
)

type decoded struct {
	d   Decoded
	ts  int64
	ref PacketRef
}

type batch struct {
	n int
	p [batchSize]decoded
}

// Pipeline starts the tracking goroutine. Until Close returns, the analyzer
// must be used only through the pipeline.
func (an *Analyzer) Pipeline() *Pipeline {
	pl := &Pipeline{an: an, full: make(chan *batch, batches), free: make(chan *batch, batches), done: make(chan struct{})}
	for i := 0; i < batches; i++ {
		pl.free <- new(batch)
	}
	pl.cur = <-pl.free
	go pl.track()
	return pl
}

func (pl *Pipeline) track() {
	t := pl.an.tracker
	for b := range pl.full {
		for i := 0; i < b.n; i++ {
			e := &b.p[i]
			t.track(&e.d, e.ts, e.ref)
		}
		b.n = 0
		pl.free <- b
	}
	close(pl.done)
}

// Packet decodes one frame and queues it for tracking. It does not keep p.Data.
func (pl *Pipeline) Packet(p *Packet) {
	e := &pl.cur.p[pl.cur.n]
	if !pl.an.decode(p, &e.d) {
		return
	}
	e.ts, e.ref = p.Time, p.Ref
	if pl.cur.n++; pl.cur.n == batchSize {
		pl.Flush()
	}
}

// Flush hands the queued packets to the tracker now (a live capture calls it
// when traffic is slow, so verdicts do not wait for a full batch).
func (pl *Pipeline) Flush() {
	if pl.cur.n == 0 {
		return
	}
	pl.full <- pl.cur
	pl.cur = <-pl.free
}

// Close tracks what is queued and stops the tracking goroutine. The
// analyzer can then be finished and read as usual.
func (pl *Pipeline) Close() {
	pl.Flush()
	close(pl.full)
	<-pl.done
}
