package capture

import (
	"errors"
	"io"
	"slices"
	"strings"
)

// Merger reads several sources as one capture in timestamp order. It is the
// Source that Merge returns.
type Merger struct {
	srcs  []Source
	cur   []Packet // each source's current packet
	heap  []int    // sources with a current packet; cur[heap[0]] is the earliest
	last  int      // source whose packet went out last, advanced on the next call
	begun bool
	info  SourceInfo
}

// Merge reads srcs as one capture. Packets come out by time, ties going to
// the lower source index; each source is compared by its current packet only,
// so a source's own packets keep their file order even where its clock goes
// backwards. Packet.Source is the index in srcs. A source that fails drops out
// with the error in its Info().Err while the others go on, so Next only ever
// returns io.EOF, once all are done.
func Merge(srcs []Source) Source {
	return &Merger{srcs: srcs, cur: make([]Packet, len(srcs)), heap: make([]int, 0, len(srcs)), last: -1}
}

// Next returns the earliest current packet. Its Data stays valid until the
// next call: only then is its source advanced.
func (m *Merger) Next(p *Packet) error {
	if !m.begun {
		m.begun = true
		for i := range m.srcs {
			if m.advance(i) {
				m.heap = append(m.heap, i)
				m.up(len(m.heap) - 1)
			}
		}
	} else if m.last >= 0 {
		if !m.advance(m.last) {
			n := len(m.heap) - 1
			m.heap[0] = m.heap[n]
			m.heap = m.heap[:n]
		}
		m.down(0)
	}
	if len(m.heap) == 0 {
		m.last = -1
		return io.EOF
	}
	m.last = m.heap[0]
	*p = m.cur[m.last]
	p.Source = m.last
	return nil
}

// advance reads source i's next packet and reports whether it has one.
func (m *Merger) advance(i int) bool {
	err := m.srcs[i].Next(&m.cur[i])
	if err != nil && err != io.EOF {
		if info := m.srcs[i].Info(); info.Err == nil {
			info.Err = err
		}
	}
	return err == nil
}

func (m *Merger) less(a, b int) bool {
	ta, tb := m.cur[a].Time, m.cur[b].Time
	return ta < tb || ta == tb && a < b
}

func (m *Merger) up(j int) {
	h := m.heap
	for j > 0 {
		parent := (j - 1) / 2
		if !m.less(h[j], h[parent]) {
			return
		}
		h[j], h[parent] = h[parent], h[j]
		j = parent
	}
}

func (m *Merger) down(j int) {
	h := m.heap
	for {
		c := 2*j + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && m.less(h[c+1], h[c]) {
			c++
		}
		if !m.less(h[c], h[j]) {
			return
		}
		h[j], h[c] = h[c], h[j]
		j = c
	}
}

// Infos returns each source's SourceInfo, in the order of srcs.
func (m *Merger) Infos() []*SourceInfo {
	infos := make([]*SourceInfo, len(m.srcs))
	for i, s := range m.srcs {
		infos[i] = s.Info()
	}
	return infos
}

// Info sums up the sources: counts and bytes added, the overall time span,
// link types in order of appearance, Format "mixed" when the formats differ,
// and Err joining the errors that ended sources early.
func (m *Merger) Info() *SourceInfo {
	sum := SourceInfo{}
	var paths []string
	var errs []error
	for _, in := range m.Infos() {
		paths = append(paths, in.Path)
		errs = append(errs, in.Err)
		switch {
		case sum.Format == "":
			sum.Format = in.Format
		case in.Format != sum.Format:
			sum.Format = "mixed"
		}
		sum.Compressed = sum.Compressed || in.Compressed
		sum.Nanosecond = sum.Nanosecond || in.Nanosecond
		sum.Snaplen = max(sum.Snaplen, in.Snaplen)
		for _, lt := range in.LinkTypes {
			if !slices.Contains(sum.LinkTypes, lt) {
				sum.LinkTypes = append(sum.LinkTypes, lt)
			}
		}
		if in.Packets > 0 {
			if sum.Packets == 0 || in.First < sum.First {
				sum.First = in.First
			}
			if sum.Packets == 0 || in.Last > sum.Last {
				sum.Last = in.Last
			}
		}
		sum.Packets += in.Packets
		sum.Bytes += in.Bytes
	}
	sum.Path = strings.Join(paths, ",")
	sum.Err = errors.Join(errs...)
	m.info = sum
	return &m.info
}

// Close closes every source.
func (m *Merger) Close() error {
	var errs []error
	for _, s := range m.srcs {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
