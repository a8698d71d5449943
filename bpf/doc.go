// Package bpf holds synscope's eBPF programs, their committed bpf2go output
// (tap_bpfel.go, tap_bpfel.o: a plain `go build` needs no clang) and the Go
// that loads them.
//
// The packet tap (tap.c, tap.go) is a TC classifier on ingress and egress of
// one interface (TCX on kernels that have it, else a clsact qdisc) that sends
// to user space, through a ring buffer, only what connection analysis needs:
// TCP segments with SYN, FIN or RST, ICMP/ICMPv6 destination-unreachable, and
// the first data segment in each direction of the flows whose handshake it
// saw. It never drops traffic. Regenerate with `make generate`.
package bpf
