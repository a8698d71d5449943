//go:build !linux

package capture

import (
	"context"
	"errors"
	"io"
	"time"
)

// Kernel evidence (the tracepoints and the namespace's counters) is Linux's:
// elsewhere its sources cannot be opened, and a live run, where one exists,
// goes on without them. Reading capture files needs none of it.

var errNotLinux = errors.New("kernel evidence needs Linux")

// KernelConfig says whose kernel events OpenKernel reports (see the Linux
// build).
type KernelConfig struct {
	Netns string
	Ports []uint16
}

// KernelSource is never opened here.
type KernelSource struct{ info SourceInfo }

// OpenKernel says that there is no kernel evidence to open here.
func OpenKernel(context.Context, KernelConfig) (Source, error) { return nil, errNotLinux }

func (s *KernelSource) Next(*Packet) error { return io.EOF }
func (s *KernelSource) Info() *SourceInfo  { return &s.info }
func (s *KernelSource) Stats() LiveStats   { return LiveStats{} }
func (s *KernelSource) Notes() []string    { return nil }
func (s *KernelSource) NetnsInode() uint32 { return 0 }
func (s *KernelSource) Close() error       { return nil }

// Sampler is never opened here.
type Sampler struct{ info SourceInfo }

// OpenSampler says that there are no counters to sample here.
func OpenSampler(context.Context, string, time.Duration) (*Sampler, error) { return nil, errNotLinux }

func (s *Sampler) SampleNow()         {}
func (s *Sampler) Next(*Packet) error { return io.EOF }
func (s *Sampler) Info() *SourceInfo  { return &s.info }
func (s *Sampler) Close() error       { return nil }

var _ LiveSource = (*KernelSource)(nil)
