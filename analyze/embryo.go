package analyze

// Embryos: a flow that has seen nothing but SYNs from one side lives in a
// compact, pointer-free table instead of as a full flow and attempt. Most
// connections leave it within a round trip (their SYN-ACK hatches them into a
// full flow); what stays is unanswered SYNs, and in a spoofed SYN flood that
// is millions of them. The table is a slab of fixed-size records indexed by
// a map of plain integers, so the garbage collector never scans it, a flood
// costs about 400 bytes per tracked SYN, and a flood fills this table
// without evicting the real connections in the flow table.

// embryoSyns is how many SYNs an embryo records; one more hatches it (a
// client that keeps retransmitting is rare enough to get a full flow).
const embryoSyns = 2

// embryo is a SYN-only flow in about 150 bytes, with no pointers.
type embryo struct {
	key        flowKey // with its VLAN tags
	id         uint64
	last       int64 // latest SYN (capture time)
	times      [embryoSyns]int64
	refs       [embryoSyns]uint64 // packed PacketRefs (packRef)
	prev, next int32              // LRU list; -1 ends it
	isn        uint32
	data       uint32 // payload on the first SYN (TCP Fast Open)
	tsval      [embryoSyns]uint32
	ipid, ack  uint32 // the last SYN's, for duplicate detection
	win        [embryoSyns]uint16
	flags      [embryoSyns]uint8
	nsyn       uint8
	dir        uint8 // key side of the client
	opts       [embryoSyns]Options
}

func packRef(r PacketRef) uint64   { return uint64(uint16(r.Source))<<48 | r.Num&(1<<48-1) }
func unpackRef(v uint64) PacketRef { return PacketRef{Source: int32(v >> 48), Num: v & (1<<48 - 1)} }

// embryos is the table. It is indexed by the untagged 4-tuple, so an answer
// arriving with other VLAN tags still finds its SYN.
type embryos struct {
	index      map[flowKey]int32
	slab       []embryo
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

// alloc returns a free slot for k, linked at the back.
func (t *embryos) alloc(k flowKey) int32 {
	var i int32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		i = int32(len(t.slab))
		t.slab = append(t.slab, embryo{})
	}
	t.slab[i] = embryo{key: k, prev: -1, next: -1}
	t.index[untagged(k)] = i
	t.pushBack(i)
	return i
}

// remove forgets slot i.
func (t *embryos) remove(i int32) {
	t.unlink(i)
	delete(t.index, untagged(t.slab[i].key))
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
	i, ok := et.index[untagged(k)]
	if !ok {
		if et.len() >= et.max {
			t.sum.Evicted++
			t.finishEmbryo(et.head, true)
		}
		i = et.alloc(k)
		e := &et.slab[i]
		t.sum.Attempts++
		e.id = t.sum.Attempts
		e.dir, e.isn, e.data = dir, d.Seq, d.PayloadLen
		e.add(d, ts, ref)
		return true
	}
	e := &et.slab[i]
	if e.key != k || e.dir != dir || e.isn != d.Seq || int(e.nsyn) >= embryoSyns {
		return false // another VLAN, the other side, a new ISN, or too many: the full path decides
	}
	n := e.nsyn - 1
	prev := pktSig{t: e.last, seq: e.isn, ack: e.ack, ipid: e.ipid, tsval: e.tsval[n], win: e.win[n], flags: e.flags[n], valid: true}
	s := pktSig{t: ts, seq: d.Seq, ack: d.Ack, ipid: d.IPID, tsval: d.Opts.TSval, win: d.Win, flags: d.Flags, valid: true}
	if n == 0 {
		prev.plen = e.data
		s.plen = d.PayloadLen
	}
	if t.sigDuplicate(&prev, &s, d) {
		t.sum.Duplicates++
		return true
	}
	t.sum.SynRetransmits++
	e.add(d, ts, ref)
	// A retransmit renews it: move it to the back of the LRU list.
	et.unlink(i)
	et.pushBack(i)
	return true
}

func (e *embryo) add(d *Decoded, ts int64, ref PacketRef) {
	n := e.nsyn
	e.times[n], e.refs[n], e.tsval[n], e.flags[n] = ts, packRef(ref), d.Opts.TSval, d.Flags
	e.win[n], e.opts[n] = d.Win, d.Opts
	e.nsyn++
	e.ipid, e.ack = d.IPID, d.Ack
	e.last = max(e.last, ts)
}

// hatchEmbryo turns the embryo under the packet's 4-tuple, if any, into a full
// flow, so that the packet (an answer, or anything but a SYN retransmit) is
// tracked as usual.
func (t *Tracker) hatchEmbryo(k flowKey) {
	i, ok := t.embryos.index[untagged(k)]
	if !ok {
		return
	}
	e := &t.embryos.slab[i]
	if t.flows[e.key] == nil {
		f := t.newFlow(e.key)
		t.replayEmbryo(f, e)
	}
	t.embryos.remove(i)
}

// finishEmbryo judges and emits the embryo in slot i.
func (t *Tracker) finishEmbryo(i int32, evicted bool) {
	e := &t.embryos.slab[i]
	f := &t.scratch
	*f = flow{key: e.key}
	t.replayEmbryo(f, e)
	f.at.Evicted = evicted
	t.embryos.remove(i)
	t.finishAttempt(f, t.now)
}

// replayEmbryo builds the flow's attempt from the embryo, as if its SYNs had
// gone through the full path.
func (t *Tracker) replayEmbryo(f *flow, e *embryo) {
	a := t.newAttempt(f, e.dir, e.times[0], unpackRef(e.refs[0]))
	t.sum.Attempts-- // newAttempt counted it again; the embryo has its id
	a.ID = e.id
	var d Decoded
	d.Kind, d.Proto, d.IPv6 = KindTCP, 6, f.key.v6
	d.Seq = e.isn
	for n := 0; n < int(e.nsyn); n++ {
		d.Flags, d.Win, d.Opts = e.flags[n], e.win[n], e.opts[n]
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
		a.record(Event{Time: e.times[n], Ref: unpackRef(e.refs[n]), Dir: SideClient, Flags: d.Flags, Seq: d.Seq, Len: d.PayloadLen, Win: d.Win, Opts: d.Opts, Note: note})
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
	n := e.nsyn - 1
	f.sig[e.dir][0] = pktSig{t: e.times[n], seq: e.isn, ack: e.ack, ipid: e.ipid, tsval: e.tsval[n], win: e.win[n], flags: e.flags[n], valid: true}
	if n == 0 {
		f.sig[e.dir][0].plen = e.data
	}
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
