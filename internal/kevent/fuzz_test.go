package kevent

import "testing"

// FuzzParse: any bytes parse or fail cleanly; an event that parses
// re-encodes to bytes that parse to the same event, and custom block data
// never yields a record that is not one of ours.
func FuzzParse(f *testing.F) {
	e := Event{Kind: KindDrop, Time: 1, ReasonName: "NETFILTER_DROP", Location: "nft_do_chain+0x1"}
	f.Add(AppendEvent(nil, &e))
	f.Add(AppendCustomData(nil, 5, AppendEvent(nil, &e)))
	f.Add([]byte("SYNK\x01\x05{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ev Event
		if ParseEvent(b, &ev) == nil {
			var again Event
			if err := ParseEvent(AppendEvent(nil, &ev), &again); err != nil || again != ev {
				t.Fatalf("round trip: %v\n%+v\n%+v", err, ev, again)
			}
		}
		var s Sample
		_ = ParseJSON(b, &s)
		if _, rec, ok := ParseCustomData(b); ok && !Is(rec) {
			t.Fatal("custom data gave a record without the magic")
		}
	})
}
