package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/synscope/synscope/capture"
)

// liveEngine is a way to capture live traffic.
type liveEngine struct {
	name string
	open func(context.Context, capture.LiveConfig) (capture.LiveSource, error)
}

// liveEngines lists the engines this build has, best first (set by the
// platform files).
var liveEngines []liveEngine

// openEngine opens the named engine, or with "auto" the first that works,
// saying on stderr which it chose and why the better ones did not load.
func openEngine(ctx context.Context, name string, cfg capture.LiveConfig, stderr io.Writer) (capture.LiveSource, string, error) {
	if len(liveEngines) == 0 {
		return nil, "", fmt.Errorf("live capture is not supported on this platform")
	}
	var tried []string
	for _, e := range liveEngines {
		if name != "auto" && name != e.name {
			continue
		}
		src, err := e.open(ctx, cfg)
		if err == nil {
			if name == "auto" {
				why := ""
				if len(tried) > 0 {
					why = " (" + strings.Join(tried, "; ") + ")"
				}
				fmt.Fprintf(stderr, "synscope: capturing on %s with the %s engine%s\n", cfg.Interface, e.name, why)
			}
			return src, e.name, nil
		}
		if name != "auto" {
			return nil, "", err
		}
		tried = append(tried, e.name+": "+err.Error())
	}
	if len(tried) == 0 {
		return nil, "", &usageError{fmt.Sprintf("unknown --engine %q", name)}
	}
	return nil, "", fmt.Errorf("no capture engine could start: %s", strings.Join(tried, "; "))
}
