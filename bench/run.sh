#!/usr/bin/env bash
# bench/run.sh: the end-to-end benchmark behind `make bench`.
#
#   1. the Go benchmarks of ./capture and ./analyze;
#   2. bench/data/web-1g.pcap and bench/data/synflood-10m.pcap, made by
#      internal/benchgen (byte-identical every time; not regenerated when
#      their .sha256 sidecar says they are up to date);
#   3. in RUNS rounds, each running every tool once on every file after
#      dropping the file from the page cache and reading it back (cat >
#      /dev/null; see fresh below): synscope (text report, then
#      JSON report), tcpdump with a SYN/FIN/RST filter and tshark with a
#      display filter needing TCP analysis (wall seconds to the millisecond,
#      peak RSS from /usr/bin/time); the medians go into a table on stdout and, in
#      markdown, into bench/results-latest.md, with synscope's JSON summary
#      next to what the generator planted.
#
# Environment (all optional):
#   GO=go  BIN=bin/synscope  DATA=bench/data  OUT=bench/results-latest.md
#   RUNS=3             timed runs per tool and file (the median is reported)
#   SLOW=180           a tool whose first run takes longer (s) is not repeated
#   TSHARK_TIMEOUT=600 seconds before a tshark run is killed ("timeout")
#   TSHARK_MIN_GB=8    skip tshark when less memory is available (or less than
#                      2 GB + 1.5 KB per connection attempt, 16 GB for the flood)
#   SKIP_GO_BENCH=1    skip step 1
#   FILES="web-1g.pcap synflood-10m.pcap"
#
# It never sleeps; it exits non-zero when synscope or the Go benchmarks fail
# (the other tools' failures are reported in the table).
set -euo pipefail
export LC_ALL=C # numbers with a decimal point, for awk, sort -g and printf
cd "$(dirname "$0")/.."

GO=${GO:-go}
BIN=${BIN:-bin/synscope}
DATA=${DATA:-bench/data}
OUT=${OUT:-bench/results-latest.md}
RUNS=${RUNS:-3}
SLOW=${SLOW:-180}
TSHARK_TIMEOUT=${TSHARK_TIMEOUT:-600}
TSHARK_MIN_GB=${TSHARK_MIN_GB:-8}
FILES=${FILES:-web-1g.pcap synflood-10m.pcap}

say() { printf 'bench: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 1
}
[ -n "${EPOCHREALTIME:-}" ] || die "needs bash 5 or later (\$EPOCHREALTIME, to time the runs)"
status=0

# --- tools -----------------------------------------------------------------

# ensure_pkgs CMD:PACKAGE...: installs the Debian packages of the missing
# commands with apt-get, as `make deps` does (only what is missing).
ensure_pkgs() {
	local missing=() cp
	for cp in "$@"; do
		[ -x "${cp%%:*}" ] || command -v "${cp%%:*}" >/dev/null 2>&1 || missing+=("${cp#*:}")
	done
	[ ${#missing[@]} -gt 0 ] || return 0
	if ! command -v apt-get >/dev/null 2>&1; then
		say "missing: ${missing[*]} (no apt-get here to install them): the rows that need them are skipped"
		return 0
	fi
	local sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	say "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
		{ $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null; } ||
		say "could not install: ${missing[*]}: the rows that need them are skipped"
}
ensure_pkgs /usr/bin/time:time tcpdump:tcpdump tshark:tshark timeout:coreutils
[ -x /usr/bin/time ] || die "/usr/bin/time (Debian package time) is needed to measure wall time and peak RSS"
command -v "$GO" >/dev/null || die "$GO not found: Go 1.26 is needed"
[ -x "$BIN" ] || die "$BIN not found: run make build (or make bench)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$DATA"

# --- 1. Go benchmarks ------------------------------------------------------

gobench=$DATA/go-bench.txt
if [ "${SKIP_GO_BENCH:-0}" != 1 ]; then
	say "Go benchmarks of ./capture and ./analyze"
	if ! "$GO" test -run '^$' -bench . -benchmem ./capture ./analyze 2>&1 | tee "$gobench"; then
		say "the Go benchmarks FAILED (output in $gobench); going on with the captures"
		status=1
	fi
else
	: >"$gobench"
fi

# --- 2. the captures -------------------------------------------------------

say "generating the captures into $DATA (skipped when up to date)"
"$GO" build -o bin/benchgen ./internal/benchgen/gen || die "could not build the generator"
start=$(date +%s.%N)
only=$(tr ' ' ',' <<<"$FILES")
bin/benchgen -out "$DATA" -only "$only" | tee "$tmp/gen.txt" || die "generating the captures failed"
gen_s=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')

# --- 3. timing -------------------------------------------------------------

# The runs go in rounds: each round runs every tool once on every file, so
# that the runs a ratio compares (synscope against tcpdump and tshark, the
# flood's packets/s against the web capture's) are spread over the same
# minutes, not one tool's runs in a quiet minute and another's in a busy
# one (this machine's load comes and goes). Each run follows fresh: the
# page cache may have dropped the file since (tshark on the flood takes
# 14 GB), and what it holds of it depends on who read it before: a cold read
# through a memory mapping (synscope's) leaves 4 KiB folios, a sequential
# read() (cat's) 2 MiB ones, and mapping 4 KiB folios costs synscope 20-25%
# more time on the web capture (BENCHMARKS.md, session 7). Every tool starts
# each run from the same page cache, then: all of the file, as a sequential
# read leaves it.

# fresh FILE: drops FILE from the page cache (posix_fadvise DONTNEED, by
# dd; clean pages only, no root needed), then reads it back with cat.
fresh() {
	dd if="$1" iflag=nocache count=0 status=none 2>/dev/null || say "could not drop $1 from the page cache"
	cat "$1" >/dev/null
}

# median: the median of the numbers on stdin.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }

# run_once TIMEOUT CMD...: runs CMD once (stdout to /dev/null); sets R_WALL
# (s, to the millisecond), R_RSS (KB) and R_STATUS (ok, timeout, "killed
# ...", "exit N"). /usr/bin/time gives the peak RSS, but its wall time is
# in hundredths of a second: 0.14 s may be 0.135 or 0.145, 7% of a ratio.
# The wall time is taken around it instead (EPOCHREALTIME, microseconds),
# and so includes starting /usr/bin/time itself, about a millisecond, for
# every tool alike.
run_once() {
	local to=$1 rc=0 t0=$SECONDS line w0 w1
	shift
	w0=${EPOCHREALTIME//[.,]/} # microseconds
	if [ "$to" != 0 ]; then
		timeout -k 10 "$to" /usr/bin/time -f '%e %M' -o "$tmp/time" "$@" >/dev/null 2>"$tmp/stderr" || rc=$?
	else
		/usr/bin/time -f '%e %M' -o "$tmp/time" "$@" >/dev/null 2>"$tmp/stderr" || rc=$?
	fi
	w1=${EPOCHREALTIME//[.,]/}
	R_STATUS=ok
	if [ "$to" != 0 ] && { [ $rc = 124 ] || { [ $rc = 137 ] && [ $((SECONDS - t0)) -ge "$to" ]; }; }; then
		R_STATUS=timeout
	elif [ $rc = 137 ] || [ $rc = 9 ]; then
		R_STATUS="killed (out of memory?)"
		say "$* was killed after $((SECONDS - t0)) s"
	elif [ $rc != 0 ]; then
		R_STATUS="exit $rc"
		say "$* failed (exit $rc):"
		tail -n 5 "$tmp/stderr" >&2
	else
		line=$(tail -n 1 "$tmp/time")
		R_RSS=${line#* }
		printf -v R_WALL '%d.%03d' $(((w1 - w0) / 1000000)) $((((w1 - w0) / 1000) % 1000))
	fi
}

# fmt_int: 1234567 -> 1,234,567
fmt_int() { awk -v n="$1" 'BEGIN { s = sprintf("%.0f", n); o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) } print s o }'; }

tools=(synscope synscope-json tcpdump tshark)
summaries=()
declare -A packets=() skip=() walls=() rss=() state=() runs=()
for name in $FILES; do
	file=$DATA/$name
	[ -f "$file" ] || die "$file is missing"
	say "$name: warm-up read"
	fresh "$file"

	# Packets (and the summary) from one untimed JSON run.
	json=$DATA/${name%.pcap}.synscope.json
	"$BIN" read --format json -o "$json" "$file" || die "synscope failed on $file"
	packets[$name]=$(bin/benchgen -out "$DATA" -summary "$name=$json" | tee "$tmp/summary" |
		sed -n 's/^- synscope: \([0-9]*\) packets.*/\1/p')
	[ -n "${packets[$name]}" ] || die "no packet count in synscope's summary of $file"
	attempts=$(sed -n 's/^- synscope: [0-9]* packets, \([0-9]*\) attempts.*/\1/p' "$tmp/summary")
	summaries+=("### $name ($(fmt_int "${packets[$name]}") packets, $(awk -v b="$(stat -c %s "$file")" 'BEGIN { printf "%.2f GB", b / 1e9 }'))")
	while IFS= read -r l; do summaries+=("$l"); done <"$tmp/summary"
	summaries+=("")

	command -v tcpdump >/dev/null || skip[$name|tcpdump]="not installed"
	if ! command -v tshark >/dev/null; then
		skip[$name|tshark]="not installed"
	else
		# tshark keeps about 1.5 KB per TCP conversation (14 GB for the
		# flood's 10M spoofed SYNs) plus reassembly buffers: it needs at
		# least that.
		need=$(awk -v a="${attempts:-0}" -v m="$TSHARK_MIN_GB" 'BEGIN { n = a * 1.5e3 / 2^30 + 2; printf "%.1f", (n > m ? n : m) }')
		avail=$(awk '/^MemAvailable:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
		if awk -v a="$avail" -v m="$need" 'BEGIN { exit !(a < m) }'; then
			say "$name: tshark skipped: $avail GB of memory available, it needs about $need GB here"
			skip[$name|tshark]="skipped: $avail GB available, needs ~$need GB"
		fi
	fi
done

for ((round = 1; round <= RUNS; round++)); do
	for name in $FILES; do
		file=$DATA/$name
		for tool in "${tools[@]}"; do
			k="$name|$tool"
			[ -z "${skip[$k]:-}" ] || continue
			case $tool in
			synscope) cmd=("$BIN" read "$file") to=0 ;;
			synscope-json) cmd=("$BIN" read --format json "$file") to=0 ;;
			tcpdump) cmd=(tcpdump -r "$file" -w /dev/null 'tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0') to=0 ;;
			tshark) cmd=(tshark -r "$file" -Y 'tcp.flags.syn==1 && tcp.analysis.retransmission') to=$TSHARK_TIMEOUT ;;
			esac
			fresh "$file"
			run_once "$to" "${cmd[@]}"
			if [ "$R_STATUS" != ok ]; then
				skip[$k]="$R_STATUS"
				[[ $tool == synscope* ]] && status=1
				continue
			fi
			walls[$k]+="$R_WALL "
			rss[$k]+="$R_RSS "
			runs[$k]=$((${runs[$k]:-0} + 1))
			say "round $round: $name: $tool: $R_WALL s, $((R_RSS / 1024)) MB"
			if awk -v w="$R_WALL" -v s="$SLOW" 'BEGIN { exit !(w > s) }'; then
				[ "$round" -lt "$RUNS" ] && say "  $tool took $R_WALL s (> SLOW=$SLOW s): not repeated"
				skip[$k]="one run (slower than $SLOW s)"
			fi
		done
	done
done

rows=() # file|tool|wall|pps|rss MB|runs|note
declare -A wall=()
for name in $FILES; do
	for tool in "${tools[@]}"; do
		k="$name|$tool"
		note=${skip[$k]:-}
		case $note in
		"timeout") note="timeout after ${TSHARK_TIMEOUT} s" ;;
		"killed"* | "exit "*) note="failed ($note)" ;;
		"one run"*) note="" ;;
		esac
		if [ "${runs[$k]:-0}" -gt 0 ]; then
			w=$(tr ' ' '\n' <<<"${walls[$k]}" | grep . | median)
			m=$(tr ' ' '\n' <<<"${rss[$k]}" | grep . | median)
			wall[$k]=$w
			pps=$(awk -v p="${packets[$name]}" -v w="$w" 'BEGIN { print (w > 0 ? p / w : 0) }')
			rows+=("$name|$tool|$w|$(fmt_int "$pps")|$(awk -v k="$m" 'BEGIN { printf "%.0f", k / 1024 }')|${runs[$k]}|$note")
		else
			rows+=("$name|$tool|-|-|-|0|$note")
		fi
	done
	ratio() { # ratio A B: wall[A]/wall[B] or -
		if [ -n "${wall[$name|$1]:-}" ] && [ -n "${wall[$name|$2]:-}" ]; then
			awk -v a="${wall[$name|$1]}" -v b="${wall[$name|$2]}" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'
		else
			echo -
		fi
	}
	rows+=("$name|ratio synscope/tcpdump wall|$(ratio synscope tcpdump)||||")
	rows+=("$name|ratio tshark/synscope wall|$(ratio tshark synscope)||||")
done
# The flood's packets/s against the web capture's (issue 3: "the same
# packets/s"), when both were read.
web=web-1g.pcap flood=synflood-10m.pcap
if [ -n "${wall[$web|synscope]:-}" ] && [ -n "${wall[$flood|synscope]:-}" ]; then
	rows+=("$flood|ratio of synscope's packets/s to the web capture's|$(awk -v fp="${packets[$flood]}" -v fw="${wall[$flood|synscope]}" -v wp="${packets[$web]}" -v ww="${wall[$web|synscope]}" 'BEGIN { printf "%.0f%%", 100 * (fp / fw) / (wp / ww) }')||||")
fi

# --- 4. the table ----------------------------------------------------------

hdr="file|tool|wall s|packets/s|peak RSS MB|runs|note"
{
	echo
	printf '%s\n' "$hdr" "${rows[@]}" | awk -F'|' '
		{ for (i = 1; i <= NF; i++) { c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } n = NR; if (NF > nf) nf = NF }
		END { for (r = 1; r <= n; r++) { l = ""; for (i = 1; i <= nf; i++) l = l sprintf(i < 3 || i == 7 ? "%-*s  " : "%*s  ", w[i], c[r, i]); sub(/ +$/, "", l); print l } }'
	echo
} >&1

git_rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- 2>/dev/null || git_rev="$git_rev (with uncommitted changes)"
{
	echo "## synscope benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo
	echo "- commit $git_rev, $("$GO" version | cut -d' ' -f3-), $("$BIN" version 2>&1 | head -n 1)"
	echo "- $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr)"
	echo "- $(tcpdump --version 2>&1 | head -n 1), $(tshark --version 2>/dev/null | head -n 1 | sed 's/ (Git.*//')"
	echo "- median of $RUNS runs, in rounds (each round runs every tool once on every file), each after the file is dropped from the page cache and read back with cat (a tool slower than ${SLOW} s on its first run: 1 run); wall time to the millisecond around /usr/bin/time, which gives the peak RSS"
	echo "- synscope: \`synscope read FILE > /dev/null\` (text) and \`--format json\`; tcpdump: \`tcpdump -r FILE -w /dev/null 'tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0'\`; tshark: \`tshark -r FILE -Y 'tcp.flags.syn==1 && tcp.analysis.retransmission' > /dev/null\`"
	echo "- captures: internal/benchgen, $gen_s s to generate or check them"
	echo
	echo "| file | tool | wall s | packets/s | peak RSS MB | runs | note |"
	echo "|---|---|---:|---:|---:|---:|---|"
	for r in "${rows[@]}"; do echo "| ${r//|/ | } |"; done
	echo
	printf '%s\n' "${summaries[@]}"
	if [ -s "$gobench" ]; then
		echo "### Go benchmarks"
		echo
		echo '```'
		grep -E '^(Benchmark|goos|goarch|cpu|pkg|ok|FAIL)' "$gobench" || true
		echo '```'
	fi
} >"$OUT"
printf '%s\n' "${summaries[@]}"

# The live part: each engine in a network-namespace lab at the highest
# connect rate this machine drives (root only; bench/livebench says so).
say "live engines (bench/livebench)"
if live=$("$GO" run ./bench/livebench -bin "$BIN" -seconds "${LIVE_SECONDS:-5}"); then
	printf '%s\n' "$live"
	{ echo; echo "### Live engines (namespace lab, ${LIVE_SECONDS:-5} s per engine)"; echo; printf '%s\n' "$live"; } >>"$OUT"
else
	say "live part failed"
	status=1
fi
say "markdown written to $OUT"
exit $status
