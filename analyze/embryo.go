package analyze

// Embryos: a flow that has seen nothing but SYNs from one side lives in a
// compact, pointer-free table instead of as a full flow and attempt. Most
// connections leave it within a round trip (their SYN-ACK hatches them into a
// full flow); what stays is unanswered SYNs, and in a spoofed SYN flood that
// is millions of them. The table is a slab of fixed-size records indexed by
// a map of plain integers, so the garbage collector never scans it, a flood
// costs about 400 bytes per tracked SYN, and a flood fills this table
// without evicting the real connections in the flow table.

// embryoSyns is how many SYNs an embryo records; one more hatches it.
const embryoSyns = 8

type embryo struct {
	id         uint64
	prev, next int32 // LRU list by creation; -1 ends it
	nsyn       uint8
	dir        uint8 // key side of the client
	nvlan      uint8
	vlan       [2]uint16
	isn        uint32
	data       uint32 // payload on the first SYN (TCP Fast Open)
	win        uint16
	opts       Options // the first SYN's
	last       int64   // latest SYN (capture time)
	times      [embryoSyns]int64
	refs       [embryoSyns]PacketRef
	tsval      [embryoSyns]uint32
	flags      [embryoSyns]uint8
	sig        pktSig // the last SYN, for duplicate detection
}

// embryos is the table. Keys are untagged (no VLAN), so an answer arriving
// with other VLAN tags still finds its SYN; the tags live in the record.
type embryos struct {
	index      map[flowKey]int32
	slab       []embryo
	keys       []flowKey // key of each slab slot
	free       []int32
	head, tail int32
	max        int
}

func newEmbryos(max int) *embryos {
	return &embryos{index: make(map[flowKey]int32, 1024), head: -1, tail: -1, max: max}
}

func (t *embryos) len() int { return len(t.index) }

func (t *embryos) unlink(i int32) {
	e := &t.slab[i]
	if e.prev >= 0 {
		t.slab[e.prev].next = e.next
	} else {
		t.head = e.next
	}
	if e.next >= 0 {
		t.slab[e.next].prev = e.prev
	} else {
		t.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (t *embryos) pushBack(i int32) {
	e := &t.slab[i]
	e.prev, e.next = t.tail, -1
	if t.tail >= 0 {
		t.slab[t.tail].next = i
	} else {
		t.head = i
	}
	t.tail = i
}

// alloc returns a free slot for key, linked at the back.
func (t *embryos) alloc(uk flowKey) int32 {
	var i int32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		i = int32(len(t.slab))
		t.slab = append(t.slab, embryo{})
		t.keys = append(t.keys, flowKey{})
	}
	t.slab[i] = embryo{prev: -1, next: -1}
	t.keys[i] = uk
	t.index[uk] = i
	t.pushBack(i)
	return i
}

// remove forgets slot i.
func (t *embryos) remove(i int32) {
	t.unlink(i)
	delete(t.index, t.keys[i])
	t.free = append(t.free, i)
}

// pureSYN reports whether a segment can stay in the embryo table: a SYN
// without ACK or RST (ECN setup bits are fine; a FIN on a SYN is a probe's
// oddity the full path records).
func pureSYN(d *Decoded) bool {
	return d.Flags&(FlagSYN|FlagACK|FlagRST|FlagFIN) == FlagSYN
}

// embryoSYN handles a pure SYN for a flow the flow table does not have. It
// reports whether the embryo table took it; if not, the caller tracks the
// packet as a full flow (after hatching any embryo in the way).
func (t *Tracker) embryoSYN(k flowKey, dir uint8, d *Decoded, ts int64, ref PacketRef) bool {
	et := t.embryos
	uk := untagged(k)
	i, ok := et.index[uk]
	if !ok {
		if et.len() >= et.max {
			t.sum.Evicted++
			t.finishEmbryo(et.head, true)
		}
		i = et.alloc(uk)
		e := &et.slab[i]
		t.sum.Attempts++
		e.id = t.sum.Attempts
		e.dir, e.nvlan, e.vlan = dir, k.nvlan, k.vlan
		e.isn, e.data, e.win, e.opts = d.Seq, d.PayloadLen, d.Win, d.Opts
		t.embryoAdd(e, d, ts, ref)
		return true
	}
	e := &et.slab[i]
	if e.nvlan != k.nvlan || e.vlan != k.vlan || e.dir != dir || e.isn != d.Seq || int(e.nsyn) >= embryoSyns {
		return false // another VLAN, the other side, a new ISN, or too many: the full path decides
	}
	s := pktSig{t: ts, seq: d.Seq, ipid: d.IPID, tsval: d.Opts.TSval, plen: d.PayloadLen, win: d.Win, flags: d.Flags, valid: true}
	if t.sigDuplicate(&e.sig, &s, d) {
		t.sum.Duplicates++
		return true
	}
	t.sum.SynRetransmits++
	t.embryoAdd(e, d, ts, ref)
	// A retransmit renews it: move it to the back of the LRU list.
	et.unlink(i)
	et.pushBack(i)
	return true
}

func (t *Tracker) embryoAdd(e *embryo, d *Decoded, ts int64, ref PacketRef) {
	n := e.nsyn
	e.times[n], e.refs[n], e.tsval[n], e.flags[n] = ts, ref, d.Opts.TSval, d.Flags
	e.nsyn++
	if ts > e.last {
		e.last = ts
	}
	e.sig = pktSig{t: ts, seq: d.Seq, ipid: d.IPID, tsval: d.Opts.TSval, plen: d.PayloadLen, win: d.Win, flags: d.Flags, valid: true}
}

// hatchEmbryo turns the embryo under the packet's 4-tuple, if any, into a full
// flow, so that the packet (an answer, or anything but a SYN retransmit) is
// tracked as usual.
func (t *Tracker) hatchEmbryo(k flowKey) {
	uk := untagged(k)
	i, ok := t.embryos.index[uk]
	if !ok {
		return
	}
	e := &t.embryos.slab[i]
	ek := uk
	ek.nvlan, ek.vlan = e.nvlan, e.vlan
	if t.flows[ek] == nil {
		f := t.newFlow(ek)
		t.replayEmbryo(f, e)
	}
	t.embryos.remove(i)
}

// finishEmbryo judges and emits the embryo in slot i.
func (t *Tracker) finishEmbryo(i int32, evicted bool) {
	e := &t.embryos.slab[i]
	k := t.embryos.keys[i]
	k.nvlan, k.vlan = e.nvlan, e.vlan
	f := &t.scratch
	*f = flow{key: k}
	t.replayEmbryo(f, e)
	f.at.Evicted = evicted
	t.embryos.remove(i)
	t.finishAttempt(f, t.now)
}

// replayEmbryo builds the flow's attempt from the embryo, as if its SYNs had
// gone through the full path.
func (t *Tracker) replayEmbryo(f *flow, e *embryo) {
	a := t.newAttempt(f, e.dir, e.times[0], e.refs[0])
	t.sum.Attempts-- // newAttempt counted it again; the embryo has its id
	a.ID = e.id
	var d Decoded
	d.Kind, d.Proto, d.IPv6 = KindTCP, 6, f.key.v6
	d.Seq, d.Win = e.isn, e.win
	for n := 0; n < int(e.nsyn); n++ {
		d.Flags = e.flags[n]
		d.Opts = e.opts
		d.Opts.TSval = e.tsval[n]
		d.PayloadLen, d.PayloadCap = 0, 0
		if n == 0 {
			d.PayloadLen, d.PayloadCap = e.data, e.data
			t.firstSYN(f, a, &d, e.times[0])
		} else {
			if a.Syns < MaxSynTimes {
				a.SynTimes[a.Syns] = e.times[n]
				a.synTSval[a.Syns] = e.tsval[n]
			}
			a.Syns++
		}
		note := NoteSYN
		if n > 0 {
			note = NoteSYNRetransmit
		}
		a.record(Event{Time: e.times[n], Ref: e.refs[n], Dir: SideClient, Flags: d.Flags, Seq: d.Seq, Len: d.PayloadLen, Win: d.Win, Opts: d.Opts, Note: note})
		a.PktsClient++
		if d.PayloadLen > 0 && a.FirstDataClient == 0 {
			a.FirstDataClient = e.times[n]
			a.BytesClient += uint64(d.PayloadLen)
		}
		a.zeek.update(a, &d, true, f)
	}
	a.End = e.last
	f.lastHS = e.last
	f.last = t.now
	f.sig[e.dir][0] = e.sig
}

// expireEmbryos finishes embryos whose last SYN is older than the handshake
// idle time. The list is in creation order, renewed by retransmits, so the
// oldest is at the head.
func (t *Tracker) expireEmbryos() {
	et := t.embryos
	for et.head >= 0 && t.now-et.slab[et.head].last > t.idle[listHandshake] {
		t.finishEmbryo(et.head, false)
	}
}
