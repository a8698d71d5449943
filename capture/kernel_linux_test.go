package capture

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/synscope/synscope/internal/kevent"
)

func kernelRequire(t *testing.T) {
	t.Helper()
	afpRequireRoot(t)
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skip("skipped: the kernel has no BTF (/sys/kernel/btf/vmlinux): kernel events need it")
	}
}

// TestKernelSource: a connect to a closed port in the server namespace gives
// a reset-sent record and a drop record (NO_SOCKET) for the server's
// namespace, read as packets; cancelling the context ends the source with
// io.EOF, as does Close.
func TestKernelSource(t *testing.T) {
	kernelRequire(t)
	v := newAFPVeth(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src, err := OpenKernel(ctx, KernelConfig{Netns: v.srvNS, Ports: []uint16{9}})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ks := src.(*KernelSource)
	for _, n := range ks.Notes() {
		t.Logf("note: %s", n)
	}
	var st syscall.Stat_t
	if err := syscall.Stat("/var/run/netns/"+v.srvNS, &st); err != nil {
		t.Fatal(err)
	}
	if ks.NetnsInode() != uint32(st.Ino) {
		t.Fatalf("watching netns %d, want %d", ks.NetnsInode(), st.Ino)
	}

	// Traffic on another port, then the connect to the closed port 9.
	ln := v.listen(t)
	v.dial(t, ln.Addr().String()).Close()
	cli := netip.MustParseAddrPort(v.cliIP + ":41999")
	srv := netip.MustParseAddrPort(v.srvIP + ":9")
	err = inNetns(v.cliNS, func() error {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(cli)}
		_, err := d.Dial("tcp4", srv.String())
		return err
	})
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %v: %v, want connection refused", srv, err)
	}

	// Next blocks until an event comes: a watchdog ends the source if the
	// expected ones never do.
	watchdog := time.AfterFunc(10*time.Second, cancel)
	defer watchdog.Stop()
	var sawReset, sawDrop bool
	var p Packet
	for !sawReset || !sawDrop {
		if err := src.Next(&p); err != nil {
			t.Fatalf("Next: %v (reset seen %v, drop seen %v)", err, sawReset, sawDrop)
		}
		var e kevent.Event
		if p.LinkType != kevent.LinkType || p.OrigLen != len(p.Data) {
			t.Fatalf("packet link type %d orig len %d/%d", p.LinkType, p.OrigLen, len(p.Data))
		}
		if err := kevent.ParseEvent(p.Data, &e); err != nil {
			t.Fatalf("ParseEvent: %v", err)
		}
		t.Logf("%s %v->%v flags %#x seq %d ack %d reason %d %s %s", e.Kind, e.Src, e.Dst, e.Flags, e.Seq, e.Ack, e.Reason, e.ReasonName, e.Location)
		if e.Time != p.Time || e.Netns != ks.NetnsInode() {
			t.Errorf("event time %d netns %d, packet time %d, netns %d", e.Time, e.Netns, p.Time, ks.NetnsInode())
		}
		if e.Src.Port() != 9 && e.Dst.Port() != 9 {
			t.Errorf("the port filter let through %v->%v", e.Src, e.Dst)
		}
		switch {
		case e.Kind == kevent.KindSendReset && e.Src == srv && e.Dst == cli:
			sawReset = e.Flags == 0x14
		case e.Kind == kevent.KindDrop && e.Src == cli && e.Dst == srv:
			sawDrop = e.Flags == 0x02 && e.ReasonName == "NO_SOCKET"
		}
	}
	info := src.Info()
	if info.Packets < 2 || len(info.LinkTypes) != 1 || info.LinkTypes[0] != kevent.LinkType || info.Format != "kernel-events" {
		t.Errorf("info %+v", info)
	}
	if s := ks.Stats(); s.Received != info.Packets || s.Lost != 0 {
		t.Errorf("stats %+v, %d packets", s, info.Packets)
	}

	// The end: the context.
	cancel()
	for {
		err := src.Next(&p)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next after cancel: %v", err)
		}
	}

	// Close wakes a blocked Next.
	src2, err := OpenKernel(context.Background(), KernelConfig{Netns: v.srvNS, Ports: []uint16{1}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- src2.Next(&Packet{}) }()
	src2.Close()
	select {
	case err := <-done:
		if err != io.EOF {
			t.Errorf("Next after Close: %v, want io.EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a blocked Next")
	}
}

func TestKernelSourceNoNetns(t *testing.T) {
	if _, err := OpenKernel(context.Background(), KernelConfig{Netns: "synscope-no-such-netns"}); err == nil {
		t.Fatal("OpenKernel of a missing namespace succeeded")
	}
}
