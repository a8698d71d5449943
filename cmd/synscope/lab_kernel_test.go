//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synscope/synscope/report"
)

// Kernel evidence in the lab: each scenario makes the server's kernel do
// something the wire alone cannot explain, runs `synscope live` (kernel
// evidence on, as by default) in the server's namespace with each engine,
// and checks that the report says why, from the kernel's own account: drop
// reasons from skb:kfree_skb, SYN-ACK retransmits, resets, and the
// namespace's counters and listeners. Then the --write file, read offline,
// must give the same kernel findings.
//
// What the kernel does (Linux 6.18, checked here; the comments in
// analyze/kernel.go's findings follow it):
//
//   - nft_drop: nftables drops the first SYNs to the port in its input hook:
//     kfree_skb NETFILTER_DROP at nft_do_chain+0x...; no counter moves.
//   - accept_overflow: a listener with backlog 4 that never accepts. A SYN
//     that finds the accept queue full (5 waiting: full means more than the
//     backlog) is dropped with no kfree_skb event at all (the kernel
//     consumes it), counted in TcpExt.ListenOverflows and ListenDrops; the
//     client retransmits. With a round-trip time (a tbf qdisc paces the
//     server's SYN-ACKs), SYNs get answered while there is room and their
//     ACKs find the queue full: kfree_skb TCP_LISTEN_OVERFLOW at tcp_v4_rcv,
//     the handshake completes on the wire, and the server retransmits its
//     SYN-ACK. The SYN queue's limit is the backlog too: with
//     tcp_syncookies=0 the SYNs beyond it are dropped (TCPReqQFullDrop) and
//     the clients retransmit; with tcp_syncookies=1 they get syncookies
//     (TCPReqQFullDoCookies, SyncookiesSent) and their ACKs, finding the
//     queue full, are dropped in cookie_v4_check (NO_SOCKET): those clients
//     believe they are connected and the wire shows nothing wrong.
//   - paws: the server closes first and keeps the 4-tuple in TIME-WAIT; the
//     client connects again from the same port with an older timestamp:
//     kfree_skb TCP_RFC7323_TW_PAWS, TcpExt.PAWSTimewait +1. The server
//     answers with the TIME-WAIT's ACK (not captured: both engines pass only
//     handshake, FIN, RST and first-data segments), the client's kernel
//     answers that with a RST (whose drop is NOT_SPECIFIED: it ends the
//     TIME-WAIT) and retransmits its SYN within milliseconds, which a fresh
//     listener answers.
//   - healthcheck: a prober that closes with SO_LINGER 0: tcp_receive_reset
//     on the server for each probe, Tcp.EstabResets.

// kernelLab is one kernel scenario.
type kernelLab struct {
	name  string
	port  int
	extra []string // more flags for live
	// read are the flags the --write file is read back with (those of
	// extra that read has too).
	read  []string
	setup func(t *testing.T, l *lab) any
	// traffic runs in the test goroutine.
	traffic func(t *testing.T, l *lab, state any)
	check   func(t *testing.T, l *lab, state any, rep *report.Report, text string)
}

// findingKey is what the live and the offline reports must agree on.
type findingKey struct{ kind, server, cause string }

func findingKeys(rep *report.Report) []findingKey {
	var keys []findingKey
	for _, inc := range rep.Incidents {
		if inc.Kernel == nil {
			continue
		}
		for _, f := range inc.Kernel.Findings {
			k := findingKey{inc.Kind, inc.Server, f.Cause}
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	slices.SortFunc(keys, func(a, b findingKey) int {
		return strings.Compare(a.kind+" "+a.server+" "+a.cause, b.kind+" "+b.server+" "+b.cause)
	})
	return keys
}

// kernelFinding returns the incident's finding of cause, or nil.
func kernelFinding(inc *report.Incident, cause string) *report.Finding {
	if inc.Kernel == nil {
		return nil
	}
	for i := range inc.Kernel.Findings {
		if inc.Kernel.Findings[i].Cause == cause {
			return &inc.Kernel.Findings[i]
		}
	}
	return nil
}

func counter(ik *report.IncidentKernel, name string) int64 {
	for _, c := range ik.Counters {
		if c.Name == name {
			return c.Delta
		}
	}
	return 0
}

// renderText renders the JSON report as the text report (`synscope report`).
func renderText(t *testing.T, rep []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report.json")
	if err := os.WriteFile(path, rep, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := runMain(context.Background(), []string{"report", "--format", "text", path}, nil, &out, &errb); code != exitOK {
		t.Fatalf("synscope report: exit %d: %s", code, errb.String())
	}
	return out.String()
}

// kernelSection is the incident's "What the kernel saw" block of the text
// report (the lines under the incident's heading "#id kind").
func kernelSection(text string, inc *report.Incident) string {
	head := "#" + strconv.Itoa(inc.ID) + " " + inc.Kind + " "
	i := strings.Index(text, head)
	if i < 0 {
		return ""
	}
	rest := text[i:]
	j := strings.Index(rest, "What the kernel saw:")
	if j < 0 {
		return ""
	}
	rest = rest[j:]
	if k := strings.Index(rest, "\n#"); k >= 0 {
		rest = rest[:k]
	}
	return rest
}

// waitFor polls cond every 20 ms until it holds, failing after timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, with a deadline
	}
}

// listenRaw listens on the server side with the given backlog and never
// accepts. It returns the listening socket.
func listenRaw(t *testing.T, l *lab, port, backlog int) int {
	t.Helper()
	fd := -1
	in(t, l.srv, func() {
		s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Error(err)
			return
		}
		unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		sa := &unix.SockaddrInet4{Port: port, Addr: netip.MustParseAddr(l.srvIP).As4()}
		if err := unix.Bind(s, sa); err != nil {
			unix.Close(s)
			t.Error(err)
			return
		}
		if err := unix.Listen(s, backlog); err != nil {
			unix.Close(s)
			t.Error(err)
			return
		}
		fd = s
	})
	if fd < 0 {
		t.FailNow()
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// connectAll opens n non-blocking connections from the client side, each
// giving up after one SYN retransmit (TCP_SYNCNT 1), and returns their
// sockets.
func connectAll(t *testing.T, l *lab, port, n int) []int {
	t.Helper()
	var fds []int
	in(t, l.cli, func() {
		sa := &unix.SockaddrInet4{Port: port, Addr: netip.MustParseAddr(l.srvIP).As4()}
		for range n {
			s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Error(err)
				return
			}
			fds = append(fds, s)
			if err := unix.SetsockoptInt(s, unix.IPPROTO_TCP, unix.TCP_SYNCNT, 1); err != nil {
				t.Error(err)
				return
			}
			if err := unix.Connect(s, sa); err != nil && err != unix.EINPROGRESS {
				t.Errorf("connect: %v", err)
				return
			}
		}
	})
	return fds
}

// settle waits until every socket has connected or failed, and says which
// connected.
func settle(t *testing.T, fds []int, timeout time.Duration) (connected []bool) {
	t.Helper()
	pfds := make([]unix.PollFd, len(fds))
	for i, fd := range fds {
		pfds[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLOUT}
	}
	done := make([]bool, len(fds))
	connected = make([]bool, len(fds))
	left := len(fds)
	for deadline := time.Now().Add(timeout); left > 0; {
		wait := time.Until(deadline)
		if wait <= 0 {
			t.Fatalf("%d of %d connects neither connected nor failed within %v", left, len(fds), timeout)
		}
		if _, err := unix.Poll(pfds, int(min(wait, time.Second)/time.Millisecond)+1); err != nil && err != unix.EINTR {
			t.Fatal(err)
		}
		for i := range pfds {
			if done[i] || pfds[i].Revents == 0 {
				continue
			}
			done[i] = true
			left--
			pfds[i].Fd = -1 // poll ignores it from now on
			e, err := unix.GetsockoptInt(fds[i], unix.SOL_SOCKET, unix.SO_ERROR)
			connected[i] = err == nil && e == 0
		}
	}
	return connected
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// acceptQueue reads the listener's accept queue (waiting connections) and
// its backlog from TCP_INFO.
func acceptQueue(fd int) (waiting, backlog uint32) {
	ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return 0, 0
	}
	return ti.Unacked, ti.Sacked
}

func kernelLabs() []kernelLab {
	var labs []kernelLab
	labs = append(labs, kernelLab{
		// nftables drops the first two SYNs; the third is answered.
		name: "nft_drop", port: 8091,
		setup: func(t *testing.T, l *lab) any {
			for _, cmd := range [][]string{
				{"nft", "add", "table", "inet", "t"},
				{"nft", "add", "chain", "inet", "t", "in", "{ type filter hook input priority 0 ; }"},
				{"nft", "add", "rule", "inet", "t", "in", "tcp", "dport", "8091", "tcp", "flags", "syn", "counter", "drop"},
			} {
				if _, err := nsExec(l.srv, cmd...); err != nil {
					t.Skipf("skipped: nftables does not work here: %v", err)
				}
			}
			serve(t, l, 8091, func(c net.Conn) {})
			return nil
		},
		traffic: func(t *testing.T, l *lab, _ any) {
			// The rule goes once its counter has seen the second SYN (see
			// the syn_retransmit scenario in lab_test.go).
			unblocked := unblockAfterSYNs(l, 2)
			in(t, l.cli, func() {
				c, err := dialPort(l, 8091, 15*time.Second)
				if err != nil {
					t.Errorf("dial through the SYN drop: %v", err)
					return
				}
				c.Close()
			})
			if err := <-unblocked; err != nil {
				t.Error(err)
			}
		},
		check: func(t *testing.T, l *lab, _ any, rep *report.Report, text string) {
			inc := findIncident(t, rep, "syn_retransmit", l.srvIP+":8091")
			ik := inc.Kernel
			if ik == nil || len(ik.Findings) == 0 {
				t.Fatalf("no kernel findings: %+v", ik)
			}
			f := ik.Findings[0]
			if f.Cause != "kernel_drop" || f.Confidence != "high" || !strings.Contains(f.Text, "NETFILTER_DROP (nft_do_chain+") || f.Attempts != 1 {
				t.Errorf("first finding %+v, want kernel_drop NETFILTER_DROP at nft_do_chain", f)
			}
			if len(inc.Causes) == 0 || !strings.HasPrefix(inc.Causes[0].Cause, "kernel: dropped by this host's kernel: NETFILTER_DROP") {
				t.Errorf("the kernel finding does not lead the causes: %+v", inc.Causes)
			}
			// Besides the SYNs: the client's FIN, freed unread with the
			// server's socket (QUEUE_PURGE), no cause.
			var syn []report.ReasonCount
			for _, r := range ik.Drops {
				if r.SYN {
					syn = append(syn, r)
				} else if r.Reason != "QUEUE_PURGE" {
					t.Errorf("drop %+v", r)
				}
			}
			if len(syn) != 1 || syn[0].Reason != "NETFILTER_DROP" || syn[0].Count != 2 || syn[0].Attempts != 1 {
				t.Errorf("SYN drops %+v, want the 2 SYNs of 1 attempt, NETFILTER_DROP", syn)
			}
			for _, a := range inc.Samples {
				if a.Kernel == nil || a.Kernel.SynDrops != 2 || a.Kernel.DropReason != "NETFILTER_DROP" || !strings.HasPrefix(a.Kernel.DropLocation, "nft_do_chain+") {
					t.Errorf("sample attempt %s: kernel %+v, want 2 SYNs dropped, NETFILTER_DROP at nft_do_chain", a.Client, a.Kernel)
				}
			}
			sec := kernelSection(text, inc)
			if !strings.Contains(sec, "dropped: 2 SYN(s) of 1 attempt(s), reason NETFILTER_DROP at nft_do_chain+") {
				t.Errorf("text report, incident %d's kernel section:\n%s", inc.ID, sec)
			}
		},
	})
	for _, cookies := range []int{0, 1} {
		type overflow struct {
			ln  int
			rtt bool
		}
		labs = append(labs, kernelLab{
			// A listener (backlog 4) that never accepts, flooded: 12
			// connects at once, then 3 more once its accept queue is full.
			// Each connect gives up after one SYN retransmit, so the
			// traffic ends when the kernel says so; --syn-timeout below
			// that keeps the unanswered ones from being undetermined.
			name: "accept_overflow_syncookies_" + strconv.Itoa(cookies), port: 8092,
			extra: []string{"--syn-timeout", "900ms"}, read: []string{"--syn-timeout", "900ms"},
			setup: func(t *testing.T, l *lab) any {
				if _, err := nsExec(l.srv, "sysctl", "-qw", "net.ipv4.tcp_syncookies="+strconv.Itoa(cookies)); err != nil {
					t.Fatal(err)
				}
				st := &overflow{ln: listenRaw(t, l, 8092, 4)}
				// A round-trip time: the server's packets paced at 100 kbit/s
				// (a SYN-ACK every 6 ms), so SYNs are answered before the
				// first ACKs come back, as on a real network. Without tbf the
				// scenario still runs, SYN drops only.
				if _, err := exec.LookPath("tc"); err == nil {
					_, err := nsExec(l.srv, "tc", "qdisc", "add", "dev", l.srvIf, "root", "tbf", "rate", "100kbit", "burst", "200", "latency", "10s")
					st.rtt = err == nil
				}
				if !st.rtt {
					t.Log("no tbf qdisc: the lab has no round-trip time, the handshakes' ACKs are not dropped")
				}
				return st
			},
			traffic: func(t *testing.T, l *lab, state any) {
				st := state.(*overflow)
				first := connectAll(t, l, 8092, 12)
				waitFor(t, "the accept queue filling", 10*time.Second, func() bool {
					q, b := acceptQueue(st.ln)
					return b > 0 && q > b
				})
				second := connectAll(t, l, 8092, 3)
				all := append(first, second...)
				defer func() {
					for _, fd := range all {
						unix.Close(fd)
					}
				}()
				connected := settle(t, all, 15*time.Second)
				q, b := acceptQueue(st.ln)
				t.Logf("syncookies %d, rtt %v: %d of %d connects succeeded as far as the clients know; accept queue %d, backlog %d",
					cookies, st.rtt, countTrue(connected), len(all), q, b)
				if n := countTrue(connected[len(first):]); n != 0 {
					t.Errorf("%d of the connects made once the queue was full succeeded", n)
				}
			},
			check: func(t *testing.T, l *lab, state any, rep *report.Report, text string) {
				st := state.(*overflow)
				server := l.srvIP + ":8092"
				// Every incident of a handshake kind carries the finding;
				// the SYNs that found the queue full make one.
				inc := findIncident(t, rep, "unanswered_syn", server)
				var seen []string
				for i := range rep.Incidents {
					inc := &rep.Incidents[i]
					switch inc.Kind {
					case "unanswered_syn", "syn_retransmit", "synack_retransmit":
					default:
						continue
					}
					seen = append(seen, inc.Kind)
					f := kernelFinding(inc, "accept_queue_overflow")
					if f == nil {
						t.Errorf("%s incident without accept_queue_overflow: %+v", inc.Kind, inc.Kernel)
						continue
					}
					if f.Confidence != "high" || !strings.Contains(f.Text, "the listener "+server+" (backlog 4, 5 waiting to be accepted at its fullest)") {
						t.Errorf("%s: finding %+v", inc.Kind, f)
					}
					ik := inc.Kernel
					if x := ik.Listener; x == nil || x.Addr != server || x.Backlog != 4 || x.Queue != 5 || !x.Full {
						t.Errorf("%s: listener %+v, want %s backlog 4, 5 waiting, full", inc.Kind, x, server)
					}
					if counter(ik, "TcpExt.ListenOverflows") <= 0 || counter(ik, "TcpExt.ListenDrops") <= 0 {
						t.Errorf("%s: counters %+v, want ListenOverflows and ListenDrops up", inc.Kind, ik.Counters)
					}
					if !strings.Contains(strings.Join(f.Evidence, "\n"), "net.ipv4.tcp_syncookies = "+strconv.Itoa(cookies)) {
						t.Errorf("%s: evidence %q does not give tcp_syncookies", inc.Kind, f.Evidence)
					}
					sec := kernelSection(text, inc)
					if !strings.Contains(sec, "listener "+server+": backlog 4, up to 5 waiting to be accepted (full)") || !strings.Contains(sec, "TcpExt.ListenOverflows +") {
						t.Errorf("text report, %s's kernel section:\n%s", inc.Kind, sec)
					}
				}
				// The SYNs found the queue full: no drop event for them.
				if f := kernelFinding(inc, "accept_queue_overflow"); f != nil && !strings.Contains(f.Text, "dropped the SYNs it had no room for, silently") {
					t.Errorf("unanswered_syn finding %q", f.Text)
				}
				if !st.rtt {
					return
				}
				// The ACKs that found the queue full.
				sa := findIncident(t, rep, "synack_retransmit", server)
				f := kernelFinding(sa, "accept_queue_overflow")
				if f == nil || !strings.Contains(strings.Join(f.Evidence, "\n"), "TCP_LISTEN_OVERFLOW") || !strings.Contains(f.Text, "when the clients' ACKs came") {
					t.Errorf("synack_retransmit: accept queue finding %+v", f)
				}
				if len(sa.Kernel.Findings) == 0 || sa.Kernel.Findings[0].Cause != "accept_queue_overflow" {
					t.Errorf("synack_retransmit: findings %v, want accept_queue_overflow first", findingKeys(rep))
				}
				if f := kernelFinding(sa, "synack_retransmits"); f == nil || !strings.Contains(f.Text, "dropped the clients' ACKs itself") {
					t.Errorf("synack_retransmit: SYN-ACK retransmit finding %+v", f)
				}
				if kernelFinding(sa, "kernel_drop") != nil {
					t.Errorf("synack_retransmit: a generic kernel_drop beside the accept queue finding: %+v", sa.Kernel.Findings)
				}
				if sa.Kernel.SynackRetransmits == 0 || !slices.ContainsFunc(sa.Kernel.Drops, func(r report.ReasonCount) bool { return r.Reason == "TCP_LISTEN_OVERFLOW" && !r.SYN }) {
					t.Errorf("synack_retransmit: kernel %+v, want SYN-ACK retransmits and ACKs dropped with TCP_LISTEN_OVERFLOW", sa.Kernel)
				}
				all := inc.Kernel.Counters
				switch cookies {
				case 0:
					// Beyond the SYN queue (as small as the backlog), SYNs are dropped.
					if counter(inc.Kernel, "TcpExt.TCPReqQFullDrop") <= 0 || kernelFinding(inc, "syn_queue_overflow") == nil {
						t.Errorf("syncookies 0: counters %+v, findings %+v, want TCPReqQFullDrop and syn_queue_overflow", all, inc.Kernel.Findings)
					}
				case 1:
					// Beyond it, SYNs get cookies, and the cookies' ACKs are
					// dropped in cookie_v4_check: counted, though the wire
					// shows those handshakes as fine.
					if counter(sa.Kernel, "TcpExt.TCPReqQFullDoCookies") <= 0 || counter(sa.Kernel, "TcpExt.SyncookiesSent") <= 0 {
						t.Errorf("syncookies 1: counters %+v, want TCPReqQFullDoCookies and SyncookiesSent", sa.Kernel.Counters)
					}
					if !slices.ContainsFunc(sa.Kernel.AcksDropped, func(r report.ReasonCount) bool { return strings.HasPrefix(r.Location, "cookie_v4_check") }) {
						t.Errorf("syncookies 1: handshake_acks_dropped %+v, want cookie_v4_check", sa.Kernel.AcksDropped)
					}
					if kernelFinding(inc, "syn_queue_overflow") != nil {
						t.Errorf("syncookies 1: a SYN queue finding: %+v", inc.Kernel.Findings)
					}
				}
				t.Logf("incidents with the finding: %v", seen)
			},
		})
	}
	labs = append(labs, kernelLab{
		// A SYN that reuses a 4-tuple the server holds in TIME-WAIT, with
		// an older timestamp.
		name: "paws", port: 8093,
		setup: func(t *testing.T, l *lab) any {
			serve(t, l, 8093, func(c net.Conn) { c.Write([]byte("bye\n")) }) // the server closes first
			return nil
		},
		traffic: func(t *testing.T, l *lab, _ any) {
			pawsTraffic(t, l, 8093, 40093)
		},
		check: func(t *testing.T, l *lab, _ any, rep *report.Report, text string) {
			server := l.srvIP + ":8093"
			var inc *report.Incident
			for i := range rep.Incidents {
				// How the wire shows the rejected SYN is the tracker's
				// business (the TIME-WAIT's ACK is not captured): it is a
				// handshake incident either way.
				if k := rep.Incidents[i].Kind; (k == "unanswered_syn" || k == "syn_retransmit") && rep.Incidents[i].Server == server {
					inc = &rep.Incidents[i]
				}
			}
			if inc == nil {
				t.Fatalf("no unanswered_syn or syn_retransmit incident for %s: %v", server, incidentKeys(rep))
			}
			f := kernelFinding(inc, "paws")
			if f == nil || f.Confidence != "high" || !strings.Contains(f.Text, "PAWS") || len(inc.Kernel.Findings) == 0 || inc.Kernel.Findings[0].Cause != "paws" {
				t.Fatalf("%s: findings %+v, want paws first", inc.Kind, inc.Kernel.Findings)
			}
			var reason string
			for _, r := range inc.Kernel.Drops {
				if r.SYN {
					reason = r.Reason
				}
			}
			if !strings.Contains(reason, "PAWS") {
				t.Errorf("SYN drop reason %q, want a PAWS one (drops %+v)", reason, inc.Kernel.Drops)
			}
			t.Logf("the kernel's reason: %s; finding: %s", reason, f.Text)
			if counter(inc.Kernel, "TcpExt.PAWSTimewait")+counter(inc.Kernel, "TcpExt.PAWSActive") <= 0 {
				t.Errorf("PAWS counters did not move: %+v", inc.Kernel.Counters)
			}
			ts := findIncident(t, rep, "timestamps", server)
			if ts.Timestamps == nil || ts.Timestamps.PAWSRejects == 0 {
				t.Errorf("timestamps incident %+v, want paws_rejects > 0", ts.Timestamps)
			}
			if !strings.Contains(kernelSection(text, inc), "reason "+reason+" at ") {
				t.Errorf("text report, kernel section:\n%s", kernelSection(text, inc))
			}
		},
	})
	labs = append(labs, kernelLab{
		// A prober every 250 ms that closes with SO_LINGER 0 (RST).
		name: "healthcheck", port: 8094,
		setup: func(t *testing.T, l *lab) any {
			serve(t, l, 8094, func(c net.Conn) {
				buf := make([]byte, 64)
				if _, err := c.Read(buf); err == nil {
					c.Write([]byte("OK\n"))
					io.Copy(io.Discard, c)
				}
			})
			return nil
		},
		traffic: func(t *testing.T, l *lab, _ any) {
			in(t, l.cli, func() {
				tick := time.NewTicker(250 * time.Millisecond) // the prober's period is the scenario
				defer tick.Stop()
				for i := range 8 {
					if i > 0 {
						<-tick.C
					}
					c, err := dialPort(l, 8094, 5*time.Second)
					if err != nil {
						t.Error(err)
						return
					}
					c.SetDeadline(time.Now().Add(5 * time.Second))
					c.Write([]byte("GET /health\n"))
					if _, err := io.ReadFull(c, make([]byte, 3)); err != nil {
						t.Errorf("probe %d: %v", i, err)
					}
					c.SetLinger(0)
					c.Close()
				}
			})
		},
		check: func(t *testing.T, l *lab, _ any, rep *report.Report, text string) {
			inc := findIncident(t, rep, "healthcheck_rst", l.srvIP+":8094")
			ik := inc.Kernel
			if inc.Attempts != 8 || ik == nil || ik.Watched != inc.Attempts || ik.AttemptsWithReset != inc.Attempts || ik.ResetsReceived != inc.Attempts {
				t.Fatalf("%d probes; kernel %+v, want the server kernel's receive-reset event on each", inc.Attempts, ik)
			}
			f := kernelFinding(inc, "kernel_resets")
			if f == nil || f.Attempts != inc.Attempts || f.Confidence != "high" {
				t.Errorf("finding %+v", f)
			}
			if counter(ik, "Tcp.EstabResets") < int64(inc.Attempts) {
				t.Errorf("Tcp.EstabResets moved %d, want >= %d", counter(ik, "Tcp.EstabResets"), inc.Attempts)
			}
			if len(ik.Drops) != 0 || kernelFinding(inc, "kernel_drop") != nil {
				t.Errorf("drops %+v on a health check", ik.Drops)
			}
			if !strings.Contains(kernelSection(text, inc), "resets: 0 sent, 8 received, on 8 attempt(s)") {
				t.Errorf("text report, kernel section:\n%s", kernelSection(text, inc))
			}
		},
	})
	labs = append(labs, kernelLab{
		// --kernel=false: the report says the evidence was not collected.
		name: "kernel_off", port: 8095, extra: []string{"--kernel=false"},
		setup: func(t *testing.T, l *lab) any { return nil },
		traffic: func(t *testing.T, l *lab, _ any) {
			in(t, l.cli, func() {
				if c, err := dialPort(l, 8095, 2*time.Second); err == nil {
					c.Close()
				}
			})
		},
		check: func(t *testing.T, l *lab, _ any, rep *report.Report, text string) {
			k := rep.Kernel
			if k == nil || k.Collected || !slices.ContainsFunc(k.Missing, func(m string) bool { return strings.Contains(m, "not collected (--kernel=false)") }) {
				t.Fatalf("kernel %+v, want missing: not collected (--kernel=false)", k)
			}
			inc := findIncident(t, rep, "refused", l.srvIP+":8095")
			if inc.Kernel != nil {
				t.Errorf("kernel evidence without the kernel: %+v", inc.Kernel)
			}
			if !strings.Contains(text, "no kernel evidence was collected") || !strings.Contains(text, "--kernel=false") {
				t.Errorf("the text report does not say the kernel evidence is missing")
			}
		},
	})
	return labs
}

// pawsTraffic connects from lport to the server (which closes first, so it
// keeps the 4-tuple in TIME-WAIT), then again from lport with an older TCP
// timestamp: the server's kernel rejects that SYN by PAWS.
//
// The client's kernel makes the older timestamp: TSval is the clock in ms
// plus an offset per 4-tuple, random with net.ipv4.tcp_timestamps=1 and
// zero with 2. The first connection (=1) tells the offset (TCP_TIMESTAMP).
// When it is positive, a connection with =2 is older; when negative, one
// with =2 (newer, so the TIME-WAIT lets it through) and then one with =1 is.
func pawsTraffic(t *testing.T, l *lab, port, lport int) {
	t.Helper()
	server := net.JoinHostPort(l.srvIP, strconv.Itoa(port))
	setTS := func(v int) {
		if _, err := nsExec(l.cli, "sysctl", "-qw", "net.ipv4.tcp_timestamps="+strconv.Itoa(v)); err != nil {
			t.Fatal(err)
		}
	}
	defer nsExec(l.cli, "sysctl", "-qw", "net.ipv4.tcp_timestamps=1")
	// conn connects with tcp_timestamps=ts, reads to the server's close,
	// closes, waits for the server's TIME-WAIT, and returns the timestamp
	// offset of the connection.
	conn := func(ts int) (offset int32) {
		setTS(ts)
		in(t, l.cli, func() {
			d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(l.cliIP), Port: lport},
				Control: func(_, _ string, c syscall.RawConn) error {
					var err error
					c.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1) })
					return err
				}}
			c, err := d.Dial("tcp4", server)
			if err != nil {
				t.Errorf("connect from :%d with tcp_timestamps=%d: %v", lport, ts, err)
				return
			}
			defer c.Close()
			rc, _ := c.(*net.TCPConn).SyscallConn()
			rc.Control(func(fd uintptr) {
				v, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_TIMESTAMP)
				var now unix.Timespec
				unix.ClockGettime(unix.CLOCK_MONOTONIC, &now)
				if err == nil {
					offset = int32(uint32(v) - uint32(now.Nano()/1e6))
				}
			})
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadAll(c); err != nil {
				t.Errorf("read to the server's close: %v", err)
			}
		})
		if t.Failed() {
			t.FailNow()
		}
		filter := "( sport = :" + strconv.Itoa(port) + " and dport = :" + strconv.Itoa(lport) + " )"
		waitFor(t, "the server's TIME-WAIT", 5*time.Second, func() bool {
			out, err := nsExec(l.srv, "ss", "-Htan", "state", "time-wait", filter)
			return err == nil && strings.TrimSpace(out) != ""
		})
		return offset
	}
	off := conn(1)
	if off > -60000 && off < 60000 {
		t.Skipf("skipped: the client's timestamp offset for this 4-tuple is %d ms, too close to 0 to make an older timestamp", off)
	}
	if off < 0 {
		conn(2)
		conn(1) // older by -off ms
	} else {
		conn(2) // older by off ms
	}
	t.Logf("timestamp offset of the 4-tuple: %d ms", off)
}

// TestLiveKernelEvidence runs each kernel scenario with each engine, all at
// once (each in its own lab), and checks the live report, its text
// rendering, and the --write file read back: the same kernel findings.
func TestLiveKernelEvidence(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: the kernel lab needs root (network namespaces, eBPF tracepoints)")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("skipped: nft is not installed (apt-get install -y nftables; make test installs it)")
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skip("skipped: the kernel has no BTF (/sys/kernel/btf/vmlinux): kernel events need it")
	}
	var mu sync.Mutex
	var timings []string
	t.Cleanup(func() { t.Logf("scenario times: %s", strings.Join(timings, ", ")) })
	labs := kernelLabs()
	for ei, engine := range labEngines {
		t.Run(engine, func(t *testing.T) {
			for si, sc := range labs {
				n := 150 + ei*len(labs) + si // a distinct lab subnet per subtest
				t.Run(sc.name, func(t *testing.T) {
					t.Parallel()
					start := time.Now()
					l := newLabN(t, n)
					state := sc.setup(t, l)
					lv := startLive(t, l, engine, sc.extra...)
					sc.traffic(t, l, state)
					rep := lv.stop(t)
					t.Logf("%s: %d attempts (outcomes %+v), incidents %v, kernel findings %v", engine, rep.Summary.Attempts, rep.Summary.Outcomes, incidentKeys(rep), findingKeys(rep))
					if sc.name != "kernel_off" && (rep.Kernel == nil || !rep.Kernel.Collected || len(rep.Kernel.Missing) > 0) {
						t.Errorf("kernel evidence: %+v", rep.Kernel)
					}
					sc.check(t, l, state, rep, renderText(t, lv.out.Bytes()))
					// Offline on what live wrote: the same kernel findings.
					off := analyse(t, slices.Concat(sc.read, []string{lv.written})...)
					if got, want := findingKeys(off), findingKeys(rep); !slices.Equal(got, want) {
						t.Errorf("read on the --write file: kernel findings %v, live said %v", got, want)
					}
					if got, want := incidentKeys(off), incidentKeys(rep); !slices.Equal(got, want) {
						t.Errorf("read on the --write file: incidents %v, live said %v", got, want)
					}
					mu.Lock()
					timings = append(timings, fmt.Sprintf("%s/%s %.1fs", engine, sc.name, time.Since(start).Seconds()))
					mu.Unlock()
				})
			}
		})
	}
}
