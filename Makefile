# synscope: `make run` builds and analyses a bundled capture; `make test`
# installs what the tests need (only what is missing) and runs every test.

GO      ?= go
BIN     := bin/synscope
SHOWCASE := testdata/pcaps/showcase.pcapng
# Debian packages the tests use: tcpdump and tshark are the references the
# filter and capture tests compare against, chromium renders the HTML report,
# libpcap-dev builds the libpcap engine, nftables drops SYNs in the live lab.
TEST_PKGS := tcpdump tshark chromium libpcap-dev nftables

.PHONY: all build build-pcap run test deps vet bench fuzz fuzz-brief testdata generate bpf-check clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/synscope

# build-pcap adds the libpcap engine (--engine pcap); it needs cgo and
# libpcap-dev.
build-pcap: deps
	$(GO) build -tags pcap -o bin/synscope-pcap ./cmd/synscope

run: build
	./$(BIN) read $(SHOWCASE)

# deps installs the missing test packages with apt-get (as root, or via sudo).
deps:
	@missing=""; for p in $(TEST_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		export DEBIAN_FRONTEND=noninteractive; \
		$$SUDO apt-get install -y -qq $$missing >/dev/null 2>&1 || \
		{ $$SUDO apt-get update -qq >/dev/null && $$SUDO apt-get install -y -qq $$missing >/dev/null; } || \
		{ echo "could not install:$$missing (tests that need them will skip)"; }; \
	fi

# vet also type-checks the tree for the other systems and a 32-bit target:
# reading capture files is pure Go and builds everywhere (live capture and
# kernel evidence are Linux's; the eBPF objects are little-endian only).
CROSS_VET := darwin/arm64 windows/amd64 linux/386

vet:
	$(GO) vet ./...
	@for t in $(CROSS_VET); do echo "go vet ./... for $$t"; GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) vet ./... || exit 1; done
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test: deps vet bpf-check
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -tags pcap ./capture ./cmd/synscope
	$(MAKE) --no-print-directory fuzz-brief

# bpf-check rebuilds the eBPF objects from their sources and fails when they
# differ from the committed ones.
bpf-check: generate
	@git diff --exit-code --stat -- bpf/ || { echo "bpf/: the committed eBPF objects differ from bpf/*.c: run make generate and commit"; exit 1; }

# Fuzz targets, as package:Target. `make fuzz` runs each for FUZZTIME;
# `make test` runs each briefly (fuzz-brief), after the seed corpora
# (testdata/fuzz in each package, and the f.Add seeds) ran as unit tests.
FUZZ_TARGETS := capture:FuzzNewReader analyze:FuzzDecode analyze:FuzzOptions analyze:FuzzTracker analyze:FuzzFilter report:FuzzReadJSON analyze:FuzzKernel internal/kevent:FuzzParse
FUZZTIME ?= 60s

fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test ./$$pkg -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) || exit 1; done

# fuzz-brief counts executions rather than seconds: with a duration, Go
# 1.26's fuzzing coordinator can report "context deadline exceeded" as a
# failure when a worker is still busy as the time runs out on a loaded
# machine (golang/go#75804, fixed in Go 1.27), with no failing input at all.
fuzz-brief:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=20000x

# bench runs the Go benchmarks of ./capture and ./analyze, generates
# bench/data/web-1g.pcap (1 GB) and bench/data/synflood-10m.pcap (10M SYNs)
# unless they are up to date, and times synscope, tcpdump and tshark on both;
# the table goes to stdout and bench/results-latest.md (see bench/run.sh).
bench: build
	GO="$(GO)" BIN="$(BIN)" ./bench/run.sh

# generate rebuilds the committed eBPF objects (bpf/tap_bpfel.{go,o}) from
# bpf/tap.c with bpf2go (a Go tool in go.mod); it installs the C toolchain and
# headers it needs when missing. A plain `go build` needs none of this.
BPF_PKGS := clang llvm libbpf-dev linux-libc-dev

generate:
	@missing=""; for p in $(BPF_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		export DEBIAN_FRONTEND=noninteractive; \
		$$SUDO apt-get install -y -qq $$missing >/dev/null 2>&1 || \
		{ $$SUDO apt-get update -qq >/dev/null && $$SUDO apt-get install -y -qq $$missing >/dev/null; } || \
		{ echo "could not install:$$missing"; exit 1; }; \
	fi
	$(GO) generate ./bpf

# testdata regenerates the crafted captures (byte-identical on every run).
testdata:
	$(GO) run ./internal/testgen/gen -out testdata/pcaps

clean:
	rm -rf bin
