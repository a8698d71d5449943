// Command gen writes synscope's crafted test captures, EXPECT.tsv and
// README.md.
//
//	go run ./internal/testgen/gen -out testdata/pcaps
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/synscope/synscope/internal/testgen"
)

func main() {
	out := flag.String("out", "testdata/pcaps", "directory to write the captures into")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	if err := testgen.Generate(dir); err != nil {
		return fmt.Errorf("generating into %s: %w", dir, err)
	}
	return nil
}
