//go:build pcap && cgo && linux

package main

func init() { labEngines = append(labEngines, "pcap") }
