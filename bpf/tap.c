//go:build ignore

// tap.c: synscope's eBPF packet tap, a TC classifier attached to the ingress
// and egress of one interface (TCX, or clsact on older kernels). It never
// drops traffic: every path returns TC_ACT_UNSPEC (== TCX_NEXT). It copies to
// the "events" ring buffer only:
//   - TCP segments with SYN, FIN or RST set;
//   - ICMP destination-unreachable and ICMPv6 destination-unreachable;
//   - the first data-bearing segment and the first pure ACK in each direction
//     of the flows whose SYN or SYN-ACK it saw (tracked in the LRU hash
//     "flows"): the client's handshake ACK, a server's challenge ACK.
// Each record is a struct event_hdr followed by the packet's first cap_len
// bytes (cap_len <= snaplen). Only <linux/bpf.h> and libbpf's bpf_helpers.h
// are needed; the protocol headers are parsed by offset.

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "common.h"

#define MAX_SNAPLEN 256
#define WAKEUP_BYTES (64 * 1024) // wake the reader once this much is waiting

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8

#define PROTO_ICMP 1
#define PROTO_TCP 6
#define PROTO_ICMPV6 58

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

#define EV_F_L2 0x01 // the captured bytes start with an Ethernet header

// Settings, rewritten by user space before load.
const volatile __u32 snaplen = 128;            // bytes of packet copied, 1..MAX_SNAPLEN
const volatile __u8 l2_present = 1;            // 0 on raw-IP devices (tun, wireguard)

struct event_hdr {
	__u64 ts_boot_ns; // bpf_ktime_get_boot_ns()
	__u32 orig_len;   // skb->len
	__u32 cap_len;    // bytes that follow the header
	__u32 ifindex;
	__u8 egress;
	__u8 flags; // EV_F_*
	__u16 _pad;
};

struct flow_key {
	__u32 a[4]; // canonical order: (a, pa) < (b, pb)
	__u32 b[4];
	__u16 pa;
	__u16 pb;
	__u32 family;
};

struct flow_val {
	__u32 data_seen; // bit 0: first data a->b sent; bit 1: b->a
	__u32 ack_seen;  // bit 0: first pure ACK a->b sent; bit 1: b->a
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
} flows SEC(".maps");

// icmp_ok applies the port filter to the TCP header quoted in an ICMP error
// whose quoted IP header starts at off.
static __always_inline int icmp_ok(struct __sk_buff *skb, __u32 off, int v6)
{
	__u8 ip[40];
	__be16 pp[2];
	__u32 l4;

	if (nports == 0)
		return 1;
	if (v6) {
		if (bpf_skb_load_bytes(skb, off, ip, 40) || ip[6] != PROTO_TCP)
			return 0;
		l4 = off + 40;
	} else {
		if (bpf_skb_load_bytes(skb, off, ip, 20) || ip[9] != PROTO_TCP)
			return 0;
		l4 = off + (ip[0] & 0x0f) * 4;
	}
	if (bpf_skb_load_bytes(skb, l4, pp, 4))
		return 0;
	return port_ok(bpf_ntohs(pp[0]), bpf_ntohs(pp[1]));
}

static __always_inline void emit(struct __sk_buff *skb, __u8 egress)
{
	__u64 snap = snaplen; // a known constant to the verifier (frozen rodata)
	if (snap > MAX_SNAPLEN)
		snap = MAX_SNAPLEN;
	if (snap < 1)
		snap = 1;

	struct event_hdr *e = bpf_ringbuf_reserve(&events, sizeof(*e) + snap, 0);
	if (!e) {
		count_lost();
		return;
	}
	__u64 len = skb->len; // 64-bit, so that the bounds checks apply to R4 itself
	if (len > snap)
		len = snap;
	if (len < 1 || bpf_skb_load_bytes(skb, 0, (void *)(e + 1), len)) {
		bpf_ringbuf_discard(e, 0);
		return;
	}
	e->ts_boot_ns = bpf_ktime_get_boot_ns();
	e->orig_len = skb->len;
	e->cap_len = len;
	e->ifindex = skb->ifindex;
	e->egress = egress;
	e->flags = l2_present ? EV_F_L2 : 0;
	e->_pad = 0;
	// Wake the reader only once a batch has piled up: a wakeup per event
	// costs user space a syscall per event. The reader polls with a short
	// deadline, so a lone event still arrives within that.
	__u64 wake = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(e, wake);
}

static __always_inline int handle(struct __sk_buff *skb, __u8 egress)
{
	__u32 off = 0;
	__u16 proto;

	if (l2_present) {
		__be16 h[7];
		if (bpf_skb_load_bytes(skb, 0, h, 14))
			return TC_ACT_UNSPEC;
		proto = bpf_ntohs(h[6]);
		off = 14;
#pragma unroll
		for (int i = 0; i < 2; i++) {
			if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
				break;
			__be16 vh[2];
			if (bpf_skb_load_bytes(skb, off, vh, 4))
				return TC_ACT_UNSPEC;
			proto = bpf_ntohs(vh[1]);
			off += 4;
		}
	} else {
		proto = bpf_ntohs((__u16)skb->protocol);
	}

	struct flow_key key;
	__builtin_memset(&key, 0, sizeof(key));
	__u32 saddr[4] = {}, daddr[4] = {};
	__u32 l4off, l4len;
	__u8 l4proto;
	int v6;

	if (proto == ETH_P_IP) {
		__u8 ip[20];
		if (bpf_skb_load_bytes(skb, off, ip, 20) || (ip[0] >> 4) != 4)
			return TC_ACT_UNSPEC;
		__u32 ihl = (ip[0] & 0x0f) * 4;
		if (ihl < 20)
			return TC_ACT_UNSPEC;
		if (((ip[6] & 0x1f) | ip[7]) != 0) // not the first fragment
			return TC_ACT_UNSPEC;
		__u32 tot = ((__u32)ip[2] << 8) | ip[3];
		if (tot == 0) // BIG TCP: the length is the skb's
			tot = skb->len - off;
		if (tot < ihl)
			return TC_ACT_UNSPEC;
		l4proto = ip[9];
		__builtin_memcpy(&saddr[0], &ip[12], 4);
		__builtin_memcpy(&daddr[0], &ip[16], 4);
		l4off = off + ihl;
		l4len = tot - ihl;
		v6 = 0;
	} else if (proto == ETH_P_IPV6) {
		__u8 ip[40];
		if (bpf_skb_load_bytes(skb, off, ip, 40) || (ip[0] >> 4) != 6)
			return TC_ACT_UNSPEC;
		__u32 plen = ((__u32)ip[4] << 8) | ip[5];
		if (plen == 0)
			plen = skb->len - off - 40;
		l4proto = ip[6]; // extension headers are not followed
		__builtin_memcpy(saddr, &ip[8], 16);
		__builtin_memcpy(daddr, &ip[24], 16);
		l4off = off + 40;
		l4len = plen;
		v6 = 1;
	} else {
		return TC_ACT_UNSPEC;
	}

	if (l4proto == PROTO_ICMP || l4proto == PROTO_ICMPV6) {
		if (l4proto != (v6 ? PROTO_ICMPV6 : PROTO_ICMP))
			return TC_ACT_UNSPEC;
		__u8 t;
		if (bpf_skb_load_bytes(skb, l4off, &t, 1))
			return TC_ACT_UNSPEC;
		if (t == (v6 ? 1 : 3) && icmp_ok(skb, l4off + 8, v6))
			emit(skb, egress);
		return TC_ACT_UNSPEC;
	}
	if (l4proto != PROTO_TCP)
		return TC_ACT_UNSPEC;

	__u8 th[14];
	if (bpf_skb_load_bytes(skb, l4off, th, 14))
		return TC_ACT_UNSPEC;
	__u16 sport = ((__u16)th[0] << 8) | th[1];
	__u16 dport = ((__u16)th[2] << 8) | th[3];
	__u32 doff = (th[12] >> 4) * 4;
	__u8 fl = th[13];
	if (!port_ok(sport, dport))
		return TC_ACT_UNSPEC;

	// Canonical flow key, the same for both directions; dir is 0 when
	// this segment goes a->b.
	int dir = 0;
#pragma unroll
	for (int i = 0; i < 4; i++) {
		if (saddr[i] != daddr[i]) {
			dir = saddr[i] > daddr[i];
			goto decided;
		}
	}
	dir = sport > dport;
decided:
	if (dir) {
		__builtin_memcpy(key.a, daddr, 16);
		__builtin_memcpy(key.b, saddr, 16);
		key.pa = dport;
		key.pb = sport;
	} else {
		__builtin_memcpy(key.a, saddr, 16);
		__builtin_memcpy(key.b, daddr, 16);
		key.pa = sport;
		key.pb = dport;
	}
	key.family = v6 ? 6 : 4;

	int want = fl & (TCP_SYN | TCP_FIN | TCP_RST);
	if (fl & TCP_SYN) {
		// A client's SYN starts the flow afresh: a 4-tuple reused while
		// the previous connection's entry lingers (TIME-WAIT) must pass its
		// first ACKs and data again.
		struct flow_val nv = {};
		bpf_map_update_elem(&flows, &key, &nv, (fl & TCP_ACK) ? BPF_NOEXIST : BPF_ANY);
	}
	if (l4len > doff && !(fl & TCP_RST)) { // carries data
		struct flow_val *v = bpf_map_lookup_elem(&flows, &key);
		if (v) {
			__u32 bit = dir ? 2 : 1;
			__u32 seen = v->data_seen;
			if (!(seen & bit)) {
				want = 1;
				v->data_seen = seen | bit;
				if ((seen | bit) == 3 && !(fl & TCP_SYN))
					bpf_map_delete_elem(&flows, &key);
			}
		}
	}
	// The first pure ACK each way: the client's ACK completing the
	// handshake (its time is the handshake's end), or a server's challenge
	// ACK to a SYN on a 4-tuple it still holds (stale state, TIME-WAIT).
	if (!want && (fl & TCP_ACK) && l4len <= doff) {
		struct flow_val *v = bpf_map_lookup_elem(&flows, &key);
		if (v) {
			__u32 bit = dir ? 2 : 1;
			if (!(v->ack_seen & bit)) {
				want = 1;
				v->ack_seen |= bit;
			}
		}
	}
	if (fl & TCP_RST)
		bpf_map_delete_elem(&flows, &key);
	if (want)
		emit(skb, egress);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int tap_ingress(struct __sk_buff *skb)
{
	return handle(skb, 0);
}

SEC("tc")
int tap_egress(struct __sk_buff *skb)
{
	return handle(skb, 1);
}

char __license[] SEC("license") = "Dual BSD/GPL";
