#!/usr/bin/env bash
# record-kernel.sh: records real kernel traffic WITH the kernel's evidence
# (drop reasons, SYN-ACK retransmits, resets, counter samples) between two
# throw-away network namespaces: `synscope live --write` in the server
# namespace writes testdata/pcaps/lab-kernel-*.pcapng (the evidence in pcapng
# custom blocks, which tcpdump and Wireshark skip). Run as root:
#
#   sudo testdata/lab/record-kernel.sh            # about 15 s
#   OUT=/tmp/lab testdata/lab/record-kernel.sh    # somewhere else
#
# Topology: ss-kc-XXXX (10.249.0.1/30) <-veth-> ss-ks-XXXX (10.249.0.2/30),
# a fresh pair for each capture (so that no socket of one, such as a client
# left in FIN-WAIT-2 by the accept-queue flood, sends into the next). No
# default route, IPv6 off: nothing leaves the namespaces. Readiness is
# checked, not slept on: synscope's ready file, the listening sockets (ss
# -ltn), the nft drop counter, the accept queue's fill (ss -ltn Recv-Q), the
# end of every connection (ss -tan). The one wait that is not a readiness
# check is the analyser's: see (b).
set -euo pipefail

if [[ $EUID -ne 0 ]]; then
	echo "record-kernel.sh: must run as root (network namespaces, eBPF)" >&2
	exit 1
fi
for tool in ip ss python3 sysctl nft tc go; do
	command -v "$tool" >/dev/null || { echo "record-kernel.sh: $tool not found (nft: apt-get install -y nftables)" >&2; exit 1; }
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${OUT:-$here/../pcaps}
mkdir -p "$out"
out=$(cd "$out" && pwd)

suffix=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
CLI= SRV= VC= VS= # set by setup
CLI_IP=10.249.0.1
SRV_IP=10.249.0.2
work=$(mktemp -d /tmp/synscope-klab.XXXXXX)
server_pid=
live_pid=
client_pid=

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	for pid in $client_pid $live_pid $server_pid; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	done
	teardown
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

# setup N: a fresh lab, the Nth.
setup() {
	CLI=ss-kc-$suffix-$1
	SRV=ss-ks-$suffix-$1
	VC=kc$suffix$1 # veth ends (interface names are limited to 15 characters)
	VS=ks$suffix$1
	ip netns add "$CLI"
	ip netns add "$SRV"
	ip link add "$VC" type veth peer name "$VS"
	ip link set "$VC" netns "$CLI"
	ip link set "$VS" netns "$SRV"
	local ns
	for ns in "$CLI" "$SRV"; do
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
		ip netns exec "$ns" ip link set lo up
	done
	in_cli ip link set "$VC" address 02:00:0a:f9:00:01
	in_srv ip link set "$VS" address 02:00:0a:f9:00:02
	in_cli ip addr add "$CLI_IP/30" dev "$VC"
	in_srv ip addr add "$SRV_IP/30" dev "$VS"
	in_cli ip link set "$VC" up
	in_srv ip link set "$VS" up
}

# teardown: deleting the namespaces removes the veth pair, the nft table
# and the qdisc too.
teardown() {
	[[ -n $CLI ]] && ip netns del "$CLI" 2>/dev/null || true
	[[ -n $SRV ]] && ip netns del "$SRV" 2>/dev/null || true
	CLI= SRV=
}

listening() { in_srv ss -Hltn "sport = :$1" | grep -q .; }

# start_server PORT MODE...: kernellab.py MODE SRV_IP PORT ... in the server namespace.
start_server() {
	local port=$1 mode=$2
	shift 2
	ip netns exec "$SRV" python3 "$here/kernellab.py" "$mode" "$SRV_IP" "$port" "$@" >"$work/server.log" 2>&1 &
	server_pid=$!
	poll 200 listening "$port" || { echo "record-kernel.sh: server never listened on :$port" >&2; cat "$work/server.log" >&2; exit 1; }
}

stop_server() {
	kill "$server_pid"
	wait "$server_pid" 2>/dev/null || true
	server_pid=
}

live_ready() { [[ -e $work/ready ]]; }

# start_live FILE: synscope live in the server namespace, eBPF engine, kernel
# evidence on (the default), writing $work/FILE.
start_live() {
	rm -f "$work/ready"
	"$work/synscope" live -i "$VS" --netns "$SRV" --engine ebpf --write "$work/$1" --ready-file "$work/ready" \
		--format json -o "$work/$1.json" 2>"$work/live.err" &
	live_pid=$!
	poll 400 live_ready || { echo "record-kernel.sh: synscope live did not get ready" >&2; cat "$work/live.err" >&2; exit 1; }
}

stop_live() {
	kill -INT "$live_pid"
	wait "$live_pid" || { echo "record-kernel.sh: synscope live failed" >&2; cat "$work/live.err" >&2; exit 1; }
	live_pid=
	if grep -q "lost" "$work/live.err"; then
		echo "record-kernel.sh: synscope live lost events:" >&2
		cat "$work/live.err" >&2
		exit 1
	fi
	mv "$work/$1" "$out/$1"
	echo "record-kernel.sh: $1: $(stat -c %s "$out/$1") bytes"
}

# quiet PORT: no TCP connection to the server's PORT, in either namespace,
# is between SYN and the end of its close (TIME-WAIT and listeners are fine;
# the flood leaves client sockets in FIN-WAIT-2 whose server never took
# them).
quiet() {
	! { in_cli ss -Htan "dport = :$1"; in_srv ss -Htan "sport = :$1"; } | grep -Ev '^(LISTEN|TIME-WAIT)' | grep -q .
}

wait_quiet() {
	poll 400 quiet "$1" || { echo "record-kernel.sh: connections did not finish" >&2; in_cli ss -tan >&2; in_srv ss -tan >&2; exit 1; }
}

echo "record-kernel.sh: kernel $(uname -r); building synscope"
(cd "$repo" && go build -o "$work/synscope" ./cmd/synscope)
setup 1
echo "record-kernel.sh: server namespace: tcp_syncookies $(in_srv sysctl -n net.ipv4.tcp_syncookies)," \
	"tcp_synack_retries $(in_srv sysctl -n net.ipv4.tcp_synack_retries); client namespace: tcp_syn_linear_timeouts" \
	"$(in_cli sysctl -n net.ipv4.tcp_syn_linear_timeouts 2>/dev/null || echo absent)"

# (a) nftables drops the first two SYNs to :8080; the client's kernel
# retransmits and the third is answered (GET, response, the server closes).
nft_table=synscope_klab_$suffix
dropped() { in_srv nft list chain inet "$nft_table" input | grep -o 'packets [0-9]*' | awk '{print $2}'; }
two_dropped() { [[ $(dropped) -ge 2 ]]; }
ip netns exec "$SRV" python3 "$here/labserver.py" "$SRV_IP" 8080 >"$work/server.log" 2>&1 &
server_pid=$!
poll 200 listening 8080 || { echo "record-kernel.sh: labserver never listened" >&2; exit 1; }
in_srv nft -f - <<-EOF
	table inet $nft_table {
		chain input {
			type filter hook input priority 0; policy accept;
			tcp dport 8080 tcp flags & (syn | ack) == syn counter drop
		}
	}
EOF
start_live lab-kernel-nft-drop.pcapng
ip netns exec "$CLI" python3 "$here/labclient.py" get "$SRV_IP" 8080 >"$work/client.log" 2>&1 &
client_pid=$!
poll 200 two_dropped || { echo "record-kernel.sh: SYNs were not dropped (counter: $(dropped))" >&2; exit 1; }
in_srv nft delete table inet "$nft_table"
wait "$client_pid"
client_pid=
wait_quiet 8080
stop_live lab-kernel-nft-drop.pcapng
stop_server
teardown

# (b) a listener with backlog 4 that never accepts, flooded: 12 connects at
# once, 3 more once its accept queue is full (Recv-Q 5: full means more than
# the backlog). tcp_syncookies=1, the default. A tbf qdisc paces the server's
# packets (100 kbit/s, a SYN-ACK every 6 ms) so that, as on a real network,
# SYNs are answered before the first ACKs come back. Every connect gives up
# after one SYN retransmit (TCP_SYNCNT 1); the client prints which did.
setup 2
in_srv sysctl -qw net.ipv4.tcp_syncookies=1
in_srv tc qdisc add dev "$VS" root tbf rate 100kbit burst 200 latency 10s
start_server 8081 backlog 4
queue_full() { [[ $(in_srv ss -Hltn "sport = :8081" | awk '{print $2}') -ge 5 ]]; }
mkfifo "$work/go"
start_live lab-kernel-accept-overflow.pcapng
ip netns exec "$CLI" python3 "$here/kernellab.py" overflow "$SRV_IP" 8081 12 3 "$work/go" >"$work/client.log" 2>&1 &
client_pid=$!
poll 200 queue_full || { echo "record-kernel.sh: the accept queue did not fill" >&2; in_srv ss -ltn >&2; exit 1; }
echo go >"$work/go"
wait "$client_pid"
client_pid=
# The one wait that is no readiness check: the analyser calls a SYN
# unanswered once the capture has run on for --syn-timeout (3 s by default,
# what a later `synscope read` of the file uses) after it; the clients' last
# SYNs went out one retransmit timeout (1 s) before they gave up.
sleep 2.5
stop_live lab-kernel-accept-overflow.pcapng
cat "$work/client.log"
stop_server
teardown
overflow_outcomes="*=established"
for port in $(awk '$2 == "failed" {print $1}' "$work/client.log"); do
	overflow_outcomes+=",$port=unanswered"
done
if grep -q pending "$work/client.log"; then
	echo "record-kernel.sh: connects still pending" >&2
	exit 1
fi

# (c) the server closes first and keeps the 4-tuple in TIME-WAIT; the
# client connects again from the same port with an older timestamp, which
# the server's kernel rejects by PAWS (see kernellab.py paws).
setup 3
start_server 8082 closer
start_live lab-kernel-paws.pcapng
in_cli python3 "$here/kernellab.py" paws "$SRV_IP" 8082 40093 | tee "$work/client.log"
wait_quiet 8082
stop_live lab-kernel-paws.pcapng
stop_server
teardown
paws_n=$(grep -c "TSval" "$work/client.log") # 2 or 3 connections; the last is the rejected one

# (d) a health checker: 8 probes 250 ms apart, each closed with SO_LINGER 0.
setup 4
start_server 8083 probe
start_live lab-kernel-healthcheck.pcapng
in_cli python3 "$here/kernellab.py" probes "$SRV_IP" 8083 8 250
wait_quiet 8083
stop_live lab-kernel-healthcheck.pcapng
stop_server
teardown

python3 "$here/expect.py" "$out/lab-EXPECT.tsv" \
	"$out/lab-kernel-nft-drop.pcapng:answered_after_retransmit:nftables in the server namespace drops the first 2 SYNs (kfree_skb NETFILTER_DROP at nft_do_chain); the third is answered" \
	"$out/lab-kernel-accept-overflow.pcapng:$overflow_outcomes:listener backlog 4 never accepting, 12+3 connects, tcp_syncookies=1, server packets paced by tbf: SYNs dropped silently at the full accept queue (ListenOverflows), ACKs dropped (TCP_LISTEN_OVERFLOW, cookie_v4_check) with the handshake complete on the wire" \
	"$out/lab-kernel-paws.pcapng:*=established,40093#$paws_n=answered_after_retransmit:the server closed first (TIME-WAIT); the last connection from port 40093 has an older TSval: its SYN is dropped by PAWS (TCP_RFC7323_TW_PAWS), the server's TIME-WAIT ACK draws the client's RST (not a close: it answers a stale ACK), and the SYN retransmit a few ms later is answered: one attempt answered after a retransmit" \
	"$out/lab-kernel-healthcheck.pcapng:established:health probes every 250 ms closed with SO_LINGER 0: RST from the client, tcp_receive_reset in the server's kernel"
echo "record-kernel.sh: done, captures and lab-EXPECT.tsv rows in $out"
