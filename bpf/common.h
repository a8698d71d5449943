// SPDX-License-Identifier: GPL-2.0
// common.h: what the packet tap (tap.c) and the kernel events (kevents.c)
// share: the TCP port filter, set from Go before load, and the per-CPU
// counter of events that found the ring buffer full.
#pragma once

#define MAX_PORTS 8

const volatile __u16 ports[MAX_PORTS] = {}; // TCP ports to watch (host order), either end
const volatile __u32 nports = 0;            // 0 = all ports

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

// count_lost counts one event the ring buffer had no room for.
static __always_inline void count_lost(void)
{
	__u32 k = 0;
	__u64 *n = bpf_map_lookup_elem(&lost, &k);
	if (n)
		(*n)++;
}

// port_ok reports whether a segment between these ports is watched.
static __always_inline int port_ok(__u16 sport, __u16 dport)
{
	if (nports == 0)
		return 1;
#pragma unroll
	for (int i = 0; i < MAX_PORTS; i++) {
		if (i >= nports)
			break;
		if (ports[i] == sport || ports[i] == dport)
			return 1;
	}
	return 0;
}
