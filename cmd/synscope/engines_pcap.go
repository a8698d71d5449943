//go:build pcap && cgo && linux

package main

import "github.com/synscope/synscope/capture"

// The libpcap engine, in builds with -tags pcap (and cgo): last, after the
// native engines (files initialise in name order, so after engines_linux.go).
func init() {
	liveEngines = append(liveEngines, liveEngine{"pcap", capture.OpenPcap})
}
