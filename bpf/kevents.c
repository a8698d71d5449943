//go:build ignore

// kevents.c: synscope's kernel evidence, four raw tracepoints that say what
// the kernel did with the TCP segments of one network namespace:
//   - skb:kfree_skb           a TCP segment (IPv4 or IPv6) was dropped: the
//                             drop reason, where (the caller's address), the
//                             segment's 4-tuple, flags, seq and ack;
//   - tcp:tcp_retransmit_synack  a SYN-ACK was sent again: the request's
//                             local and peer address and port, seq and ack;
//   - tcp:tcp_send_reset      a RST was sent: its 4-tuple, seq and ack (from
//                             the segment it answers, or from the socket for
//                             an active reset), the reason where the kernel
//                             passes one (sk_rst_reason, 6.10+), the state;
//   - tcp:tcp_receive_reset   a RST was received: the socket's 4-tuple, state.
// Raw tracepoints need no tracefs. Their arguments are the tracepoint's
// TP_PROTO, so the kernel structures are read with CO-RE (kevents.h); which
// optional arguments the running kernel passes is decided by the loader from
// the kernel's BTF (btf_trace_<name>) and given as settings: an argument that
// is absent is never read, so the program also attaches to kernels whose
// tracepoints have fewer arguments.
// Every event goes, as a struct kevent, into the "events" ring buffer; the
// per-CPU "lost" counter counts those that found it full.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

#include "common.h"
#include "kevents.h"

#define WAKEUP_BYTES (16 * 1024) // wake the reader once this much is waiting

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define AF_INET 2
#define AF_INET6 10
#define PROTO_TCP 6

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

#define TCP_TIME_WAIT 6
#define TCP_NEW_SYN_RECV 12

// Kinds, as kevent.Kind in Go.
#define KIND_DROP 1
#define KIND_SYNACK_RETRANS 2
#define KIND_SEND_RESET 3
#define KIND_RECV_RESET 4

// Settings, rewritten by user space before load.
const volatile __u32 netns_ino = 0;         // network namespace inode to watch; 0 = all
const volatile __u32 consumed_reason = 0;   // SKB_CONSUMED's value in this kernel
const volatile __u8 skip_consumed = 0;      // 1 when the kernel has SKB_CONSUMED
const volatile __u8 kfree_has_reason = 0;   // kfree_skb passes the drop reason (5.17+)
const volatile __u8 kfree_has_rx_sk = 0;    // kfree_skb passes rx_sk (6.11+)
const volatile __u8 rst_has_reason = 0;     // tcp_send_reset passes sk_rst_reason (6.10+)

// struct kevent is one event; kevents.go decodes it (keventLen bytes).
struct kevent {
	__u64 ts_boot_ns; // bpf_ktime_get_boot_ns()
	__u64 location;   // kfree_skb: the address the skb was freed from
	__u32 netns;      // network namespace inode
	__u32 reason;     // skb_drop_reason or sk_rst_reason value
	__u32 seq;
	__u32 ack;
	__u8 saddr[16]; // IPv4: the first 4 bytes
	__u8 daddr[16];
	__u16 sport; // host order
	__u16 dport;
	__u8 kind;   // KIND_*
	__u8 family; // 4 or 6
	__u8 flags;  // TCP flags
	__u8 state;  // TCP state of the socket, 0 if none
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

static __always_inline __u32 sk_netns(const struct sock *sk)
{
	if (!sk || !bpf_core_field_exists(sk->__sk_common.skc_net.net))
		return 0;
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

// skb_netns: the namespace of the skb's socket (skb->sk, else the socket the
// drop happened on), else of its device. skb->sk comes first: skb->dev shares
// its storage with the rbnode of TCP's out-of-order queue.
static __always_inline __u32 skb_netns(struct sk_buff *skb, const struct sock *rx_sk)
{
	struct sock *sk = BPF_CORE_READ(skb, sk);
	if (sk)
		return sk_netns(sk);
	if (rx_sk)
		return sk_netns(rx_sk);
	if (!bpf_core_field_exists(skb->dev->nd_net.net))
		return 0;
	struct net_device *dev = BPF_CORE_READ(skb, dev);
	if (!dev)
		return 0;
	return BPF_CORE_READ(dev, nd_net.net, ns.inum);
}

static __always_inline int netns_ok(__u32 ino)
{
	return netns_ino == 0 || ino == netns_ino;
}

static __always_inline void emit(struct kevent *e)
{
	e->ts_boot_ns = bpf_ktime_get_boot_ns();
	// Wake the reader only once a batch has piled up (a drop storm must
	// not cost user space a syscall per event); the reader polls with a
	// short deadline, so a lone event still arrives within that.
	__u64 wake = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_output(&events, e, sizeof(*e), wake)) {
		count_lost();
	}
}

// parse_skb reads the IP and TCP headers of skb into e (addresses, ports,
// flags, seq, ack) and the TCP payload length into *plen. It returns 0 for
// a TCP segment (the first fragment, if fragmented), -1 otherwise.
// The headers are read at skb->head + skb->network_header, which is set on
// both paths (in the receive path skb->data may be past it already). The TCP
// header's offset comes from the IP header (its length, or the IPv6
// extension headers walked): skb->transport_header is not always set yet
// (before ip_rcv it equals the network header, and it is ~0 on a fresh skb).
static __always_inline int parse_skb(struct sk_buff *skb, struct kevent *e, __u32 *plen)
{
	__u16 proto = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	if (proto != ETH_P_IP && proto != ETH_P_IPV6)
		return -1;
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u32 nh = BPF_CORE_READ(skb, network_header);
	__u32 l4, iplen;

	if (proto == ETH_P_IP) {
		__u8 ip[20];
		if (bpf_probe_read_kernel(ip, sizeof(ip), head + nh))
			return -1;
		__u32 ihl = (ip[0] & 0x0f) * 4;
		if ((ip[0] >> 4) != 4 || ihl < 20 || ip[9] != PROTO_TCP)
			return -1;
		if (((ip[6] & 0x1f) | ip[7]) != 0) // not the first fragment
			return -1;
		__u32 tot = ((__u32)ip[2] << 8) | ip[3];
		iplen = tot > ihl ? tot - ihl : 0; // 0 for BIG TCP: unknown
		__builtin_memcpy(e->saddr, &ip[12], 4);
		__builtin_memcpy(e->daddr, &ip[16], 4);
		e->family = 4;
		l4 = nh + ihl;
	} else {
		__u8 ip[40];
		if (bpf_probe_read_kernel(ip, sizeof(ip), head + nh))
			return -1;
		if ((ip[0] >> 4) != 6)
			return -1;
		__u8 next = ip[6];
		iplen = ((__u32)ip[4] << 8) | ip[5];
		__builtin_memcpy(e->saddr, &ip[8], 16);
		__builtin_memcpy(e->daddr, &ip[24], 16);
		e->family = 6;
		l4 = nh + 40;
		for (int i = 0; i < 4; i++) {
			if (next == PROTO_TCP)
				break;
			__u8 x[4];
			__u32 len;
			if (bpf_probe_read_kernel(x, sizeof(x), head + l4))
				return -1;
			switch (next) {
			case 0:  // hop-by-hop options
			case 43: // routing
			case 60: // destination options
				len = ((__u32)x[1] + 1) * 8;
				break;
			case 44: // fragment
				if (((x[2] << 8) | (x[3] & 0xf8)) != 0)
					return -1; // not the first fragment
				len = 8;
				break;
			case 51: // authentication header
				len = ((__u32)x[1] + 2) * 4;
				break;
			default:
				return -1;
			}
			next = x[0];
			l4 += len;
			iplen = iplen > len ? iplen - len : 0;
		}
		if (next != PROTO_TCP)
			return -1;
	}

	__u8 th[14];
	if (bpf_probe_read_kernel(th, sizeof(th), head + l4))
		return -1;
	e->sport = ((__u16)th[0] << 8) | th[1];
	e->dport = ((__u16)th[2] << 8) | th[3];
	e->seq = ((__u32)th[4] << 24) | ((__u32)th[5] << 16) | ((__u32)th[6] << 8) | th[7];
	e->ack = ((__u32)th[8] << 24) | ((__u32)th[9] << 16) | ((__u32)th[10] << 8) | th[11];
	e->flags = th[13];
	__u32 doff = (th[12] >> 4) * 4;
	*plen = iplen > doff ? iplen - doff : 0;
	return 0;
}

// sock_tuple fills e's addresses and ports from a socket's common part
// (a full, request or timewait socket): the local end first when local_src.
static __always_inline int sock_tuple(const struct sock_common *c, struct kevent *e, int local_src)
{
	__u16 fam = BPF_CORE_READ(c, skc_family);
	__u16 lport = BPF_CORE_READ(c, skc_num);
	__u16 rport = bpf_ntohs(BPF_CORE_READ(c, skc_dport));
	__u8 *l = local_src ? e->saddr : e->daddr;
	__u8 *r = local_src ? e->daddr : e->saddr;

	if (fam == AF_INET) {
		__be32 la = BPF_CORE_READ(c, skc_rcv_saddr);
		__be32 ra = BPF_CORE_READ(c, skc_daddr);
		__builtin_memcpy(l, &la, 4);
		__builtin_memcpy(r, &ra, 4);
		e->family = 4;
	} else if (fam == AF_INET6) {
		if (!bpf_core_field_exists(c->skc_v6_daddr))
			return -1;
		if (bpf_core_read(l, 16, &c->skc_v6_rcv_saddr) || bpf_core_read(r, 16, &c->skc_v6_daddr))
			return -1;
		e->family = 6;
	} else {
		return -1;
	}
	e->sport = local_src ? lport : rport;
	e->dport = local_src ? rport : lport;
	e->state = BPF_CORE_READ(c, skc_state);
	return 0;
}

SEC("raw_tracepoint/kfree_skb")
int kev_kfree_skb(struct bpf_raw_tracepoint_args *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx->args[0];
	struct sock *rx_sk = 0;
	__u32 reason = 0;

	if (kfree_has_reason) {
		reason = (__u32)ctx->args[2];
		if (skip_consumed && reason == consumed_reason)
			return 0;
	}
	if (kfree_has_rx_sk)
		rx_sk = (struct sock *)ctx->args[3];
	if (!skb)
		return 0;

	struct kevent e;
	__builtin_memset(&e, 0, sizeof(e));
	__u32 plen;
	if (parse_skb(skb, &e, &plen))
		return 0;
	if (!port_ok(e.sport, e.dport))
		return 0;
	e.netns = skb_netns(skb, rx_sk);
	if (!netns_ok(e.netns))
		return 0;
	e.kind = KIND_DROP;
	e.reason = reason;
	e.location = ctx->args[1];
	emit(&e);
	return 0;
}

SEC("raw_tracepoint/tcp_retransmit_synack")
int kev_retransmit_synack(struct bpf_raw_tracepoint_args *ctx)
{
	const struct sock *sk = (const struct sock *)ctx->args[0]; // the listener
	const struct request_sock *req = (const struct request_sock *)ctx->args[1];

	__u32 ino = sk_netns(sk);
	if (!netns_ok(ino) || !req)
		return 0;
	struct kevent e;
	__builtin_memset(&e, 0, sizeof(e));
	if (sock_tuple(&req->__req_common, &e, 1))
		return 0;
	if (!port_ok(e.sport, e.dport))
		return 0;
	const struct tcp_request_sock *treq = (const struct tcp_request_sock *)req;
	if (bpf_core_field_exists(treq->snt_isn))
		e.seq = BPF_CORE_READ(treq, snt_isn);
	if (bpf_core_field_exists(treq->rcv_nxt))
		e.ack = BPF_CORE_READ(treq, rcv_nxt);
	e.flags = TCP_SYN | TCP_ACK;
	e.netns = ino;
	e.kind = KIND_SYNACK_RETRANS;
	emit(&e);
	return 0;
}

SEC("raw_tracepoint/tcp_send_reset")
int kev_send_reset(struct bpf_raw_tracepoint_args *ctx)
{
	const struct sock *sk = (const struct sock *)ctx->args[0];  // may be NULL
	struct sk_buff *skb = (struct sk_buff *)ctx->args[1];       // the segment answered; NULL for an active reset
	__u32 reason = 0;

	if (rst_has_reason)
		reason = (__u32)ctx->args[2];

	struct kevent e;
	__builtin_memset(&e, 0, sizeof(e));
	if (skb) {
		// The RST answers skb: its tuple is skb's, reversed, and its
		// seq and ack follow RFC 793 as tcp_v4/v6_send_reset do.
		__u32 plen;
		struct kevent in;
		__builtin_memset(&in, 0, sizeof(in));
		if (parse_skb(skb, &in, &plen))
			return 0;
		__builtin_memcpy(e.saddr, in.daddr, 16);
		__builtin_memcpy(e.daddr, in.saddr, 16);
		e.sport = in.dport;
		e.dport = in.sport;
		e.family = in.family;
		if (in.flags & TCP_ACK) {
			e.seq = in.ack;
			e.flags = TCP_RST;
		} else {
			e.ack = in.seq + plen + !!(in.flags & TCP_SYN) + !!(in.flags & TCP_FIN);
			e.flags = TCP_RST | TCP_ACK;
		}
		e.netns = sk ? sk_netns(sk) : skb_netns(skb, 0);
		if (sk)
			e.state = BPF_CORE_READ(sk, __sk_common.skc_state);
	} else if (sk) {
		// An active reset (abort, linger 0, ...): seq and ack are the
		// socket's snd_nxt and rcv_nxt.
		if (sock_tuple(&sk->__sk_common, &e, 1))
			return 0;
		if (e.state != TCP_TIME_WAIT && e.state != TCP_NEW_SYN_RECV) {
			const struct tcp_sock *tp = (const struct tcp_sock *)sk;
			e.seq = BPF_CORE_READ(tp, snd_nxt);
			e.ack = BPF_CORE_READ(tp, rcv_nxt);
		}
		e.flags = TCP_RST | TCP_ACK;
		e.netns = sk_netns(sk);
	} else {
		return 0;
	}
	if (!netns_ok(e.netns) || !port_ok(e.sport, e.dport))
		return 0;
	e.kind = KIND_SEND_RESET;
	e.reason = reason;
	emit(&e);
	return 0;
}

SEC("raw_tracepoint/tcp_receive_reset")
int kev_receive_reset(struct bpf_raw_tracepoint_args *ctx)
{
	const struct sock *sk = (const struct sock *)ctx->args[0];

	__u32 ino = sk_netns(sk);
	if (!sk || !netns_ok(ino))
		return 0;
	struct kevent e;
	__builtin_memset(&e, 0, sizeof(e));
	if (sock_tuple(&sk->__sk_common, &e, 0)) // the RST came from the peer
		return 0;
	if (!port_ok(e.sport, e.dport))
		return 0;
	e.netns = ino;
	e.kind = KIND_RECV_RESET;
	emit(&e);
	return 0;
}

char __license[] SEC("license") = "Dual BSD/GPL";
