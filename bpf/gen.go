package bpf

// tap_bpfel.go and tap_bpfel.o are generated from tap.c, kevents_bpfel.go and
// kevents_bpfel.o from kevents.c (and kevents.h), and committed, so a plain
// `go build` needs no clang. Regenerate with `make generate` (installs
// clang, llvm, libbpf-dev and linux-libc-dev when missing). The multiarch -I
// paths give <asm/types.h> to <linux/bpf.h> under -target bpf.
//go:generate go tool bpf2go -tags linux -cc clang -target bpfel tap tap.c -- -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu -O2 -g -Wall -Werror
//go:generate go tool bpf2go -tags linux -cc clang -target bpfel kevents kevents.c -- -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu -O2 -g -Wall -Werror
