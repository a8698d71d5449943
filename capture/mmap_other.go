//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package capture

import (
	"errors"
	"os"
)

// Elsewhere capture files are read, not mapped.
func mmapFile(*os.File, int) ([]byte, error) { return nil, errors.ErrUnsupported }

func munmap([]byte) error { return nil }

func release([]byte) {}
