// Command synscope finds failed TCP connection attempts in captures and says
// how they failed: unanswered SYNs, SYN and SYN-ACK retransmits, refusals,
// resets and by whom, slow first responses.
//
//	synscope read capture.pcapng 'port 443'
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK      = 0
	exitDamaged = 1 // input was damaged; the report of what was read is printed
	exitUsage   = 2
)

// errDamaged marks a run whose input was damaged but whose report was written.
var errDamaged = errors.New("input damaged")

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(runMain(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// runMain dispatches the subcommand and maps errors to exit codes.
func runMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "read":
		var cfg *readConfig
		cfg, err = parseRead(args[1:], stderr)
		if err == nil {
			cfg.stdin, cfg.stdout, cfg.stderr = stdin, stdout, stderr
			err = runRead(ctx, cfg)
		}
	case "live":
		var cfg *liveConfig
		cfg, err = parseLive(args[1:], stderr)
		if err == nil {
			cfg.stdin, cfg.stdout, cfg.stderr = stdin, stdout, stderr
			err = runLive(ctx, cfg)
		}
	case "report":
		var cfg *reportConfig
		cfg, err = parseReport(args[1:], stderr)
		if err == nil {
			err = runReport(cfg, stdin, stdout)
		}
	case "version", "--version":
		fmt.Fprintln(stdout, "synscope", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, topUsage)
	default:
		err = &usageError{fmt.Sprintf("unknown command %q", args[0])}
	}
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "synscope: %v\nRun 'synscope help' for usage.\n", err)
		return exitUsage
	case errors.Is(err, errDamaged):
		return exitDamaged
	default:
		fmt.Fprintf(stderr, "synscope: %v\n", err)
		return exitDamaged
	}
}

const topUsage = `synscope: find failed TCP connection attempts and say why they failed.

Usage:
  synscope read [flags] FILE... [FILTER]    analyse pcap/pcapng files (- for stdin)
  synscope live -i IFACE [flags] [FILTER]   capture and analyse live (root)
  synscope report [flags] FILE.json         render a saved JSON report as text, markdown, html or json
  synscope version                          print the version
  synscope help                             this text

Run 'synscope read --help', 'synscope live --help' or 'synscope report --help' for the flags.
`
