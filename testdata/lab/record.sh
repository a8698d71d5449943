#!/usr/bin/env bash
# record.sh: records real kernel TCP traffic between two throw-away network
# namespaces into testdata/pcaps/lab-*.pcap. Run as root:
#
#   sudo testdata/lab/record.sh            # writes testdata/pcaps/lab-*.pcap
#   OUT=/tmp/lab testdata/lab/record.sh    # somewhere else
#
# Topology: ss-cli-XXXX (10.231.0.1/30) <-veth-> ss-srv-XXXX (10.231.0.2/30).
# No default route, IPv6 off: nothing leaves the namespaces. tcpdump runs in
# the server namespace (-U, snaplen 256). Readiness is checked, not slept on:
# tcpdump's "listening on" line, the server's listening sockets (ss -ltn),
# the SYN drop counter, and the end of every connection (ss -tan).
set -euo pipefail

if [[ $EUID -ne 0 ]]; then
	echo "record.sh: must run as root (network namespaces, tcpdump)" >&2
	exit 1
fi
for tool in ip tcpdump ss python3 sysctl nft; do
	command -v "$tool" >/dev/null || { echo "record.sh: $tool not found (nft: apt-get install -y nftables)" >&2; exit 1; }
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${OUT:-$here/../pcaps}
mkdir -p "$out"
out=$(cd "$out" && pwd)

suffix=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
CLI=ss-cli-$suffix
SRV=ss-srv-$suffix
VC=vc$suffix # veth ends (interface names are limited to 15 characters)
VS=vs$suffix
CLI_IP=10.231.0.1
SRV_IP=10.231.0.2
work=$(mktemp -d /tmp/synscope-lab.XXXXXX)
server_pid=
tcpdump_pid=
client_pid=
nft_table=synscope_lab_$suffix

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	for pid in $client_pid $tcpdump_pid $server_pid; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	done
	ip netns del "$CLI" 2>/dev/null || true
	ip netns del "$SRV" 2>/dev/null || true # deleting the namespaces removes the veth pair and the nft table
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT INT TERM

in_cli() { ip netns exec "$CLI" "$@"; }
in_srv() { ip netns exec "$SRV" "$@"; }

# poll CMD... until it succeeds, every 50 ms, at most $tries times.
poll() {
	local tries=$1
	shift
	local i
	for ((i = 0; i < tries; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

setup() {
	ip netns add "$CLI"
	ip netns add "$SRV"
	ip link add "$VC" type veth peer name "$VS"
	ip link set "$VC" netns "$CLI"
	ip link set "$VS" netns "$SRV"
	local ns dev addr mac
	for ns in "$CLI" "$SRV"; do
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
		ip netns exec "$ns" ip link set lo up
	done
	in_cli ip link set "$VC" address 02:00:0a:e7:00:01
	in_srv ip link set "$VS" address 02:00:0a:e7:00:02
	in_cli ip addr add "$CLI_IP/30" dev "$VC"
	in_srv ip addr add "$SRV_IP/30" dev "$VS"
	in_cli ip link set "$VC" up
	in_srv ip link set "$VS" up
}

listening() { in_srv ss -Hltn "sport = :$1" | grep -q .; }

start_server() {
	# Started with ip netns exec directly (not through a function) so that $! is
	# the server itself, which cleanup can signal.
	ip netns exec "$SRV" python3 "$here/labserver.py" "$SRV_IP" "$@" >"$work/server.log" 2>&1 &
	server_pid=$!
	local p
	for p in "$@"; do
		poll 200 listening "$p" || { echo "record.sh: server never listened on :$p" >&2; cat "$work/server.log" >&2; exit 1; }
	done
}

tcpdump_ready() { grep -q "listening on" "$work/tcpdump.err"; }

start_capture() {
	: >"$work/tcpdump.err"
	# -Z root: Debian's tcpdump would otherwise drop to user tcpdump, who cannot write here.
	# --immediate-mode: without it packets wait in a TPACKET_V3 block for up to
	# a second, and the ones still waiting when SIGINT arrives are lost.
	ip netns exec "$SRV" tcpdump -i "$VS" -n -U --immediate-mode -s 256 -Z root -w "$work/$1" 2>"$work/tcpdump.err" &
	tcpdump_pid=$!
	poll 200 tcpdump_ready || { echo "record.sh: tcpdump did not start" >&2; cat "$work/tcpdump.err" >&2; exit 1; }
}

stop_capture() {
	kill -INT "$tcpdump_pid"
	wait "$tcpdump_pid" || true
	tcpdump_pid=
	grep -q "packets captured" "$work/tcpdump.err" || { echo "record.sh: tcpdump did not finish cleanly" >&2; cat "$work/tcpdump.err" >&2; exit 1; }
	mv "$work/$1" "$out/$1"
	echo "record.sh: $1: $(grep "packets captured" "$work/tcpdump.err")"
}

# quiet: no TCP connection in either namespace is between SYN and the end
# of its close (TIME-WAIT and listeners are fine).
quiet() {
	! { in_cli ss -Htan; in_srv ss -Htan; } | grep -Ev '^(LISTEN|TIME-WAIT)' | grep -q .
}

wait_quiet() {
	poll 400 quiet || { echo "record.sh: connections did not finish" >&2; in_cli ss -tan >&2; exit 1; }
}

client() { in_cli python3 "$here/labclient.py" "$@"; }

# SYN drop on :8081 with nftables. (A tc fallback -- ingress u32 match on the
# SYN flag with "action drop" -- needs the act_gact module, which the kernel
# these captures were made on does not have, so nftables is required.)

drop_syns_on() {
	in_srv nft -f - <<-EOF
		table inet $nft_table {
			chain input {
				type filter hook input priority 0; policy accept;
				tcp dport 8081 tcp flags & (syn | ack) == syn counter drop
			}
		}
	EOF
}

dropped() { in_srv nft list chain inet "$nft_table" input | grep -o 'packets [0-9]*' | awk '{print $2}'; }

drop_syns_off() { in_srv nft delete table inet "$nft_table"; }

four_dropped() { [[ $(dropped) -ge 4 ]]; }

setup
linear_cli=$(in_cli sysctl -n net.ipv4.tcp_syn_linear_timeouts 2>/dev/null || echo "absent")
linear_srv=$(in_srv sysctl -n net.ipv4.tcp_syn_linear_timeouts 2>/dev/null || echo "absent")
echo "record.sh: kernel $(uname -r); tcp_syn_linear_timeouts: client ns $linear_cli, server ns $linear_srv;" \
	"tcp_syn_retries: client ns $(in_cli sysctl -n net.ipv4.tcp_syn_retries);" \
	"tcp_timestamps: client ns $(in_cli sysctl -n net.ipv4.tcp_timestamps)"

start_server 8080 8081 8082 8083

# (a) a normal HTTP exchange: GET with Connection: close, the server closes first.
start_capture lab-http.pcap
client get "$SRV_IP" 8080
wait_quiet
stop_capture lab-http.pcap

# (b) connect to a closed port: RST from the server's kernel.
start_capture lab-refused.pcap
client refused "$SRV_IP" 8089
wait_quiet
stop_capture lab-refused.pcap

# (c) SYNs to :8081 dropped until four have been dropped (about 3-4 s with
# the linear schedule); the client connects once and its kernel retransmits.
start_capture lab-syn-drop.pcap
drop_syns_on
ip netns exec "$CLI" python3 "$here/labclient.py" get "$SRV_IP" 8081 >"$work/client.log" 2>&1 &
client_pid=$!
poll 400 four_dropped || { echo "record.sh: SYNs were not dropped (counter: $(dropped))" >&2; exit 1; }
echo "record.sh: dropped $(dropped) SYNs, letting the next one through"
drop_syns_off
wait "$client_pid"
client_pid=
cat "$work/client.log"
wait_quiet
stop_capture lab-syn-drop.pcap

# (d) the server namespace does not do timestamps; the client offers them.
in_srv sysctl -qw net.ipv4.tcp_timestamps=0
start_capture lab-ts-off.pcap
client get "$SRV_IP" 8082
wait_quiet
stop_capture lab-ts-off.pcap
in_srv sysctl -qw net.ipv4.tcp_timestamps=1

# (e) the client closes with SO_LINGER 0 after its request was answered: RST.
start_capture lab-linger-rst.pcap
client linger "$SRV_IP" 8083
wait_quiet
stop_capture lab-linger-rst.pcap

# What a correct analyser must say about each recording (lab-EXPECT.tsv has
# the columns of EXPECT.tsv; ISNs and ports differ on every run).
python3 "$here/expect.py" "$out/lab-EXPECT.tsv" \
	"$out/lab-http.pcap:established:GET with Connection: close; the server closes first" \
	"$out/lab-refused.pcap:refused:closed port, RST+ACK from the server's kernel" \
	"$out/lab-syn-drop.pcap:answered_after_retransmit:4 SYNs dropped by nftables, the 5th answered (client tcp_syn_linear_timeouts=$linear_cli)" \
	"$out/lab-ts-off.pcap:established:server netns tcp_timestamps=0: SYN-ACK without TS although the SYN offers it" \
	"$out/lab-linger-rst.pcap:established:client closes with SO_LINGER 0 after the response: RST+ACK instead of FIN"
echo "record.sh: done, captures and lab-EXPECT.tsv in $out"
