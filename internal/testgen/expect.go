package testgen

import (
	"fmt"
	"strings"
)

// Expect is one row of EXPECT.tsv.
type Expect struct {
	File     string
	Client   string // ip:port, [v6]:port
	Server   string
	ISN      string // client ISN in decimal, "-" when no client SYN was captured
	Outcome  string
	Syns     int // client SYNs captured for this ISN (retransmissions included, duplicate copies not)
	SynAcks  int // SYN-ACKs captured from the server (retransmissions included)
	Close    string
	ClosedBy string
	Note     string
}

// ExpectHeader is the first line of EXPECT.tsv.
const ExpectHeader = "file\tclient\tserver\tisn\toutcome\tsyns\tsynacks\tclose\tclosed_by\tnote"

func (e Expect) String() string {
	return strings.Join([]string{e.File, e.Client, e.Server, e.ISN, e.Outcome,
		fmt.Sprint(e.Syns), fmt.Sprint(e.SynAcks), e.Close, e.ClosedBy, e.Note}, "\t")
}

// Expectation derives the EXPECT.tsv row of a connection from the segments
// that were captured; the outcome and the note are the scenario's.
func (k *Conn) Expectation() Expect {
	e := Expect{
		File:     k.cap.Name,
		Client:   k.Client.Addr.String(),
		Server:   k.Server.Addr.String(),
		ISN:      "-",
		Outcome:  k.outcome,
		Close:    "none",
		ClosedBy: "none",
		Note:     k.note,
	}
	for _, s := range k.segs {
		if !s.captured || s.icmp {
			continue
		}
		syn, ack := s.flags&SYN != 0, s.flags&ACK != 0
		switch {
		case syn && !ack && s.fromClient:
			e.Syns++
			e.ISN = fmt.Sprint(k.Client.ISN)
		case syn && ack && !s.fromClient:
			e.SynAcks++
		}
		if e.Close == "none" && s.flags&(FIN|RST) != 0 {
			e.Close = "fin"
			if s.flags&RST != 0 {
				e.Close = "rst"
			}
			e.ClosedBy = "server"
			if s.fromClient {
				e.ClosedBy = "client"
			}
		}
	}
	return e
}

// Expectations lists the rows of every capture that is listed in EXPECT.tsv.
func Expectations(caps []*Capture) ([]Expect, error) {
	var out []Expect
	for _, c := range caps {
		if c.NoExpect {
			continue
		}
		for _, k := range c.conns {
			if k.outcome == "" {
				return nil, fmt.Errorf("%s: connection %s -> %s has no expected outcome", c.Name, k.Client.Addr, k.Server.Addr)
			}
			if strings.ContainsAny(k.note, "\t\n") {
				return nil, fmt.Errorf("%s: note with a tab or newline", c.Name)
			}
			out = append(out, k.Expectation())
		}
	}
	return out, nil
}
