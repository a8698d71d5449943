package main

import "github.com/synscope/synscope/capture"

func init() {
	liveEngines = append(liveEngines,
		liveEngine{"ebpf", capture.OpenEBPF},
		liveEngine{"afpacket", capture.OpenAFPacket},
	)
}
