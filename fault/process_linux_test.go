package fault

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"unsafe"
)

// residentPages counts the pages of mem that are in memory (mincore(2)).
func residentPages(mem []byte) (resident, pages int, err error) {
	page := os.Getpagesize()
	vec := make([]byte, (len(mem)+page-1)/page)
	_, _, errno := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		return 0, len(vec), errno
	}
	for _, v := range vec {
		resident += int(v & 1)
	}
	return resident, len(vec), nil
}

// The fault's own pages are checked, not the process's resident size,
// which other tests running beside it move by as much as the fault. The
// test runs alone (not parallel): after Stop it checks that the range is
// no longer mapped, and a test mapping memory beside it could be given
// the same addresses in between.
func TestFaultMemoryPressureIsResident(t *testing.T) {
	m, _, _ := newProcessFaults(t)
	const size = 64 << 20
	if err := m.Start(ProcessFault{Name: "mem", Type: ProcMemory, Bytes: size}); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	mem := m.faults["mem"].memory
	m.mu.Unlock()
	if len(mem) != size {
		t.Fatalf("the fault holds %d bytes, want %d", len(mem), size)
	}
	resident, pages, err := residentPages(mem)
	if err != nil {
		t.Fatal(err)
	}
	if resident != pages {
		t.Fatalf("%d of the fault's %d pages are resident; a fault that only reserved memory would have none", resident, pages)
	}
	if err := m.Stop("mem"); err != nil {
		t.Fatal(err)
	}
	// Unmapped on Stop: the kernel has the pages back, and the range is
	// no longer mapped at all.
	if _, _, err := residentPages(mem); !errors.Is(err, syscall.ENOMEM) {
		t.Fatalf("mincore after Stop: %v, want ENOMEM (the memory unmapped)", err)
	}
}
