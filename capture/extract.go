package capture

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
)

// Extract reads chosen packets back from capture files: want maps a source's
// index in paths to the record numbers (Packet.Num, 1-based) wanted from it,
// and fn is called for each of them, in file order, source by source (in
// index order), with p.Source set to the index. p.Data aliases the reader's
// buffer and is valid only during the call: copy what you keep. Nothing is
// copied or decoded for the other records, and a source is read only up to
// its last wanted record.
//
// paths are the sources in the order of the run that numbered the packets
// (report.Sources). Stdin ("-") cannot be read twice: Spool it to a file
// before the run, read that, and pass the spooled path here.
//
// An error from fn stops Extract and is returned as it is. Otherwise every
// source is tried: one that cannot be opened, ends early (damage, or the
// file changed since) or lacks wanted records gives an error naming the file
// and what is missing; Extract returns them joined after the others are done.
func Extract(paths []string, want map[int]map[uint64]bool, fn func(p *Packet) error) error {
	srcs := make([]int, 0, len(want))
	for i, nums := range want {
		if len(nums) > 0 {
			srcs = append(srcs, i)
		}
	}
	slices.Sort(srcs)
	var errs []error
	for _, i := range srcs {
		if i < 0 || i >= len(paths) {
			errs = append(errs, fmt.Errorf("extracting packets: no source %d (%d sources)", i, len(paths)))
			continue
		}
		stop, err := extractOne(paths[i], i, want[i], fn)
		if stop {
			return err
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// extractOne reads one source; stop says err came from fn.
func extractOne(path string, idx int, nums map[uint64]bool, fn func(p *Packet) error) (stop bool, err error) {
	if path == "-" {
		return false, errors.New("extracting packets: stdin cannot be read again (spool it to a file first)")
	}
	var last uint64
	for n := range nums {
		last = max(last, n)
	}
	s, err := Open(path)
	if err != nil {
		return false, fmt.Errorf("extracting packets: %w", err)
	}
	defer s.Close()
	// A mapped file that shrinks under us faults: end this source with an
	// error instead of crashing, as the analysis does.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if ferr, ok := MappedFault(r, []Source{s}); ok {
				stop, err = false, fmt.Errorf("extracting packets: %w", ferr)
				return
			}
			panic(r)
		}
	}()
	left := len(nums)
	var p Packet
	for left > 0 {
		if err := s.Next(&p); err != nil {
			if err == io.EOF {
				return false, missing(path, nums, p.Num, last, nil)
			}
			return false, missing(path, nums, p.Num, last, err)
		}
		if p.Num > last {
			break
		}
		if !nums[p.Num] {
			continue
		}
		left--
		p.Source = idx
		if err := fn(&p); err != nil {
			return true, err
		}
	}
	if left > 0 {
		return false, missing(path, nums, p.Num, last, nil)
	}
	return false, nil
}

// missing describes the wanted records past the last one read (seen).
func missing(path string, nums map[uint64]bool, seen, last uint64, cause error) error {
	n := 0
	var first uint64
	for k := range nums {
		if k > seen {
			n++
			if first == 0 || k < first {
				first = k
			}
		}
	}
	if cause != nil {
		return fmt.Errorf("extracting packets from %s: %d wanted packets (from %d on) not read: %w", path, n, first, cause)
	}
	return fmt.Errorf("extracting packets from %s: the file ends at packet %d, but packets up to %d are wanted (%d missing; has it changed since?)", path, seen, last, n)
}

// Spool copies r (stdin) to a temporary file, so that a capture read from a
// pipe can be read a second time (Extract). The caller reads the capture from
// path (Open, then set Info().Path back to "-" if it should still be named
// so), and calls cleanup when done, which removes the file. On error nothing
// is left behind.
func Spool(r io.Reader) (path string, cleanup func(), err error) {
	f, err := os.CreateTemp("", "synscope-stdin-*.cap")
	if err != nil {
		return "", nil, fmt.Errorf("spooling stdin: %w", err)
	}
	name := f.Name()
	cleanup = func() { os.Remove(name) }
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("spooling stdin to %s: %w", name, err)
	}
	return name, cleanup, nil
}
