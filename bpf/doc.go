// Package bpf will hold synscope's eBPF programs (the packet tap and the
// kernel tracepoints for drop reasons, SYN-ACK retransmits and resets), their
// committed bpf2go output, and the Go that loads them. Nothing is here yet:
// offline analysis needs none of it; live capture arrives with the live engines.
package bpf
