package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/synscope/synscope/report"
)

const reportUsage = `Usage: synscope report [flags] FILE.json

Render a report saved by 'synscope read --format json' again, without the
capture: as text, as Markdown (for a ticket), as one self-contained HTML page
(charts included; nothing is fetched from the network), or as JSON. FILE - reads
stdin.

Exit status: 0 written, 1 the file could not be read or is not a synscope
report, 2 usage error.

Flags:
`

type reportConfig struct {
	file   string
	format string
	output string
}

func parseReport(args []string, stderr io.Writer) (*reportConfig, error) {
	cfg := &reportConfig{}
	fs := pflag.NewFlagSet("report", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.StringVarP(&cfg.format, "format", "f", "text", "output format: text, markdown, html or json")
	fs.StringVarP(&cfg.output, "output", "o", "-", "write the report to this file")
	fs.Usage = func() {
		fmt.Fprint(stderr, reportUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, errHelp
		}
		return nil, &usageError{err.Error()}
	}
	switch cfg.format {
	case "text", "markdown", "html", "json":
	default:
		return nil, &usageError{fmt.Sprintf("unknown --format %q (want text, markdown, html or json)", cfg.format)}
	}
	switch fs.NArg() {
	case 0:
		return nil, &usageError{"no report file given"}
	case 1:
		cfg.file = fs.Arg(0)
	default:
		return nil, &usageError{fmt.Sprintf("one report file at a time (got %d)", fs.NArg())}
	}
	return cfg, nil
}

// runReport loads a JSON report and renders it in the chosen format.
func runReport(cfg *reportConfig, stdin io.Reader, stdout io.Writer) error {
	name, in := cfg.file, stdin
	if cfg.file == "-" {
		name = "stdin"
		if in == nil {
			in = os.Stdin
		}
	} else {
		f, err := os.Open(cfg.file)
		if err != nil {
			return err // *PathError names the file
		}
		defer f.Close()
		in = f
	}
	rep, err := report.ReadJSON(in)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}

	return writeReportAs(stdout, cfg.output, cfg.format, rep)
}
