// Package bpf holds synscope's eBPF programs, their committed bpf2go output
// (tap_bpfel.{go,o}, kevents_bpfel.{go,o}: a plain `go build` needs no clang)
// and the Go that loads them.
//
// The packet tap (tap.c, tap.go) is a TC classifier on ingress and egress of
// one interface (TCX on kernels that have it, else a clsact qdisc) that sends
// to user space, through a ring buffer, only what connection analysis needs:
// TCP segments with SYN, FIN or RST, ICMP/ICMPv6 destination-unreachable, and
// the first data segment in each direction of the flows whose handshake it
// saw. It never drops traffic.
//
// The kernel events (kevents.c, kevents.go) are raw tracepoints, filtered to
// one network namespace: skb:kfree_skb of TCP segments with the drop reason
// and location, tcp:tcp_retransmit_synack, tcp:tcp_send_reset and
// tcp:tcp_receive_reset. Both regenerate with `make generate`.
package bpf
