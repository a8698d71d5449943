// kevents.h: the few kernel structures kevents.c reads, declared by hand
// with preserve_access_index so that every access is a CO-RE relocation:
// the loader (cilium/ebpf) finds each field by name in the running kernel's
// BTF and patches its offset. Only the fields used are declared; their order
// and offsets here mean nothing. Anonymous unions and structs of the kernel
// (sk_buff's dev inside its list union, sock_common's address pair) are
// found through by name, so they are flattened here.

#ifndef SYNSCOPE_KEVENTS_H
#define SYNSCOPE_KEVENTS_H

#include <linux/types.h>

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct ns_common {
	unsigned int inum; // the namespace's inode number (as in /proc/PID/ns/net)
};

struct net {
	struct ns_common ns;
};

// possible_net_t: a struct holding the pointer with CONFIG_NET_NS, empty
// without (the program checks that the field exists).
typedef struct {
	struct net *net;
} possible_net_t;

struct in6_addr {
	union {
		__u8 u6_addr8[16];
	} in6_u;
};

struct sock_common {
	__be32 skc_daddr;     // peer (IPv4)
	__be32 skc_rcv_saddr; // local (IPv4)
	__be16 skc_dport;     // peer port, network order
	__u16 skc_num;        // local port, host order
	unsigned short skc_family;
	volatile unsigned char skc_state;
	possible_net_t skc_net;
	struct in6_addr skc_v6_daddr;     // CONFIG_IPV6 only
	struct in6_addr skc_v6_rcv_saddr; // CONFIG_IPV6 only
};

struct sock {
	struct sock_common __sk_common;
};

struct request_sock {
	struct sock_common __req_common;
};

struct tcp_request_sock {
	__u32 snt_isn; // the SYN-ACK's sequence number
	__u32 rcv_nxt; // the SYN-ACK's acknowledgment number
};

struct tcp_sock {
	__u32 snd_nxt;
	__u32 rcv_nxt;
};

struct net_device {
	possible_net_t nd_net;
};

struct sk_buff {
	struct sock *sk;
	struct net_device *dev;
	unsigned int len;
	__be16 protocol;
	__u16 transport_header; // offset from head; 0xffff when unset
	__u16 network_header;   // offset from head
	unsigned char *head;
};

#pragma clang attribute pop

#endif
