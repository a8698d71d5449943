package report

import (
	"strings"
	"testing"
)

// Handshakes beyond the bound on those remembered for the accept-queue
// findings are counted in the report, as every bound's overflow is.
func TestKernelGhostsOmittedShown(t *testing.T) {
	for _, n := range []uint64{0, 3} {
		got := strings.Join(kernelSummaryLines(&Kernel{Collected: true, GhostsOmitted: n}), "\n")
		if shown := strings.Contains(got, "beyond the 65,536 remembered: 3"); shown != (n > 0) {
			t.Errorf("ghosts omitted %d: shown %v in\n%s", n, shown, got)
		}
	}
}
