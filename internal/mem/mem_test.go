package mem

import (
	"testing"
	"unsafe"
)

// TestStoreNT128 copies 128 bytes, all of them, and nothing around them.
func TestStoreNT128(t *testing.T) {
	var src [128]byte
	for i := range src {
		src[i] = byte(i + 1)
	}
	// 16-byte aligned destinations inside a guarded buffer.
	buf := make([]byte, 128+64)
	off := (16 - int(uintptr(unsafe.Pointer(&buf[16])))&15) + 16
	dst := buf[off : off+128]
	StoreNT128(unsafe.Pointer(&dst[0]), unsafe.Pointer(&src))
	StoreFence()
	if [128]byte(dst) != src {
		t.Fatalf("copied %v", dst)
	}
	for i, b := range buf {
		if (i < off || i >= off+128) && b != 0 {
			t.Fatalf("byte %d outside the destination written: %d", i, b)
		}
	}
}

// TestPrefetchNeverFaults: a prefetch of an address that is not mapped is
// dropped (Chunks.Find prefetches past the end of a mapping).
func TestPrefetchNeverFaults(t *testing.T) {
	top := ^uintptr(0)
	for _, addr := range []uintptr{0, 8, top >> 16, top &^ 127} { // (top >> 16: past user space on amd64)
		Prefetch(addr)
		Prefetch96(addr)
		PrefetchW128(addr)
	}
	var x [256]byte
	Prefetch96(uintptr(unsafe.Pointer(&x)))
}
