package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// wireCapture times each stream at relia's edge from the packets on the
// loopback interface, as the kernel stamped them: when the client's
// request reached relia, when relia sent it on to the provider, when the
// provider's first content token reached relia, and when relia sent that
// token to the client. relia's own part of the time to first token is the
// first span less the provider's: neither the load generator nor the
// simulator, which share a core on a small machine, can lengthen it by
// being late to write or to read.
//
// A stream is told apart by the "user" field of its request
// (ttftMarker), which relia passes on to the provider unchanged.
type wireCapture struct {
	fd              int
	file            *os.File        // fd, non-blocking, on the runtime's poller
	raw             syscall.RawConn // file's, to read its packets
	relia, provider uint16
	done            chan error
	// ring is the socket's receive ring (TPACKET_V3): the kernel fills
	// its blocks with the packets the filter passes and hands each block
	// over once full or once ringTimeout passed, so that the capture
	// takes hundreds of packets a wake-up rather than one a system call.
	// next is the block to take next.
	ring []byte
	next int

	// Owned by the reading goroutine until done.
	streams    map[string]*wireTimes
	headAt     map[uint16]int64  // client port: when its latest request's head arrived
	clientOf   map[uint16]string // client port: the stream its connection carries now
	upstreamOf map[uint16]string // relia's port on a provider connection: its stream
}

// wireTimes are one stream's four kernel timestamps, in nanoseconds.
type wireTimes struct{ in, out, firstIn, firstOut int64 }

// ttftMarker is what precedes a stream's name in its request body: the
// "user" field, set to "ttft-" and the stream's number.
const ttftMarker = `"user":"ttft-`

var contentToken = []byte(`"content":" `)

// startWireCapture captures the TCP segments with a payload to and from
// relia's port and the provider's port on the loopback interface. It
// needs CAP_NET_RAW.
func startWireCapture(reliaPort, providerPort int) (*wireCapture, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
	if err != nil {
		return nil, fmt.Errorf("packet socket (needs CAP_NET_RAW): %w", err)
	}
	w := newWireCapture(uint16(reliaPort), uint16(providerPort))
	w.fd = fd
	fail := func(err error) (*wireCapture, error) {
		if w.ring != nil {
			unix.Munmap(w.ring)
		}
		unix.Close(fd)
		return nil, err
	}
	if err := w.setup(); err != nil {
		return fail(err)
	}
	// The socket waits on the runtime's poller, not in a blocking
	// receive: a thread blocked in the kernel keeps its Go processor
	// until the runtime's monitor takes it back, and the harness runs on
	// one processor (pinned to CPU 0), which the step's client needs to
	// start its streams on time.
	if err := unix.SetNonblock(fd, true); err != nil {
		return fail(err)
	}
	w.file = os.NewFile(uintptr(fd), "packet capture")
	raw, err := w.file.SyscallConn()
	if err != nil {
		unix.Munmap(w.ring)
		w.file.Close() // the file owns the descriptor now
		return nil, err
	}
	w.raw = raw
	go func() { w.done <- w.read() }()
	return w, nil
}

// newWireCapture is a capture's state before its socket.
func newWireCapture(relia, provider uint16) *wireCapture {
	return &wireCapture{relia: relia, provider: provider, done: make(chan error, 1),
		streams: map[string]*wireTimes{}, headAt: map[uint16]int64{}, clientOf: map[uint16]string{}, upstreamOf: map[uint16]string{}}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (w *wireCapture) setup() error {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return err
	}
	// The filter runs in the kernel before a packet is copied to this
	// socket, so that pure acknowledgements and other traffic cost the
	// machine nothing more.
	prog, err := bpf.Assemble(segmentFilter(w.relia, w.provider))
	if err != nil {
		return err
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	if err := unix.SetsockoptSockFprog(w.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}); err != nil {
		return fmt.Errorf("attaching the packet filter: %w", err)
	}
	// A loopback packet passes the interface going out and coming in:
	// keep the copy coming in.
	if err := unix.SetsockoptInt(w.fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fmt.Errorf("PACKET_IGNORE_OUTGOING: %w", err)
	}
	if err := unix.SetsockoptInt(w.fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fmt.Errorf("PACKET_VERSION: %w", err)
	}
	req := unix.TpacketReq3{Block_size: ringBlock, Block_nr: ringBlocks, Frame_size: ringFrame,
		Frame_nr: ringBlock / ringFrame * ringBlocks, Retire_blk_tov: uint32(ringTimeout / time.Millisecond)}
	if err := unix.SetsockoptTpacketReq3(w.fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fmt.Errorf("PACKET_RX_RING: %w", err)
	}
	ring, err := unix.Mmap(w.fd, 0, ringBlock*ringBlocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mapping the packet ring: %w", err)
	}
	w.ring = ring
	return unix.Bind(w.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: lo.Index})
}

// The receive ring: 64 blocks of 1 MiB, each handed over at the latest
// ringTimeout after its first packet. A packet is at most segmentSnap
// bytes of a segment (filter), so a block holds hundreds.
const (
	ringBlock   = 1 << 20
	ringBlocks  = 64
	ringFrame   = 1 << 11 // the kernel's check only: TPACKET_V3 packs packets of any length
	ringTimeout = 2 * time.Millisecond
)

// segmentSnap is how much of a segment the capture keeps: a stream's
// marker and first content token lie within the first kilobyte of the
// segments that carry them (a request; an answer's head, role event and
// first token), and a stream whose token the capture missed would count
// as seen in part.
const segmentSnap = 4096

// segmentFilter passes IPv4 TCP segments that carry a payload and have
// port a or b at either end, their first segmentSnap bytes; it drops
// everything else.
func segmentFilter(a, b uint16) []bpf.Instruction {
	const eth = 14
	return []bpf.Instruction{
		bpf.LoadAbsolute{Off: eth + 9, Size: 1}, // 0: the IP protocol
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.IPPROTO_TCP, SkipTrue: 17},
		bpf.LoadAbsolute{Off: eth + 6, Size: 2}, // 2: fragment offset
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: 15},
		bpf.LoadMemShift{Off: eth},          // 4: X = the IP header's length
		bpf.LoadIndirect{Off: eth, Size: 2}, // 5: source port
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(a), SkipTrue: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(b), SkipTrue: 3},
		bpf.LoadIndirect{Off: eth + 2, Size: 2}, // 8: destination port
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(a), SkipTrue: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(b), SkipFalse: 8},
		// 11: headers = IP header length + TCP header length; a payload
		// is there when the IP total length is greater.
		bpf.LoadIndirect{Off: eth + 12, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 2},
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x3c},
		bpf.ALUOpX{Op: bpf.ALUOpAdd},
		bpf.StoreScratch{Src: bpf.RegA, N: 0},
		bpf.LoadAbsolute{Off: eth + 2, Size: 2}, // 16: IP total length
		bpf.LoadScratch{Dst: bpf.RegX, N: 0},
		bpf.JumpIfX{Cond: bpf.JumpGreaterThan, SkipTrue: 1},
		bpf.RetConstant{Val: 0},           // 19: drop
		bpf.RetConstant{Val: segmentSnap}, // 20: the segment's start
	}
}

// read takes the ring's blocks as the kernel hands them over until
// finish sets the socket's read deadline.
func (w *wireCapture) read() error {
	err := w.raw.Read(func(uintptr) bool {
		w.takeBlocks()
		return false // wait on the poller for the next block
	})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	return err
}

// takeBlocks reads the packets of each block the kernel handed over, in
// order, and hands the block back, letting the process's other
// goroutines run between blocks.
func (w *wireCapture) takeBlocks() {
	for {
		block := w.ring[w.next*ringBlock : (w.next+1)*ringBlock]
		desc := (*unix.TpacketHdrV1)(unsafe.Pointer(&block[unsafe.Offsetof(unix.TpacketBlockDesc{}.Hdr)]))
		if atomic.LoadUint32(&desc.Block_status)&unix.TP_STATUS_USER == 0 {
			return
		}
		at := int(desc.Offset_to_first_pkt)
		for range desc.Num_pkts {
			h := (*unix.Tpacket3Hdr)(unsafe.Pointer(&block[at]))
			frame := block[at+int(h.Mac) : at+int(h.Mac)+int(h.Snaplen)]
			w.segment(frame, int64(h.Sec)*1e9+int64(h.Nsec))
			at += int(h.Next_offset)
		}
		atomic.StoreUint32(&desc.Block_status, unix.TP_STATUS_KERNEL)
		w.next = (w.next + 1) % ringBlocks
		runtime.Gosched()
	}
}

// segment reads one captured frame: Ethernet, IPv4, TCP, payload.
func (w *wireCapture) segment(frame []byte, at int64) {
	const eth = 14
	if len(frame) < eth+20 {
		return
	}
	ip := frame[eth:]
	ihl := int(ip[0]&0x0f) * 4
	total := min(int(binary.BigEndian.Uint16(ip[2:4])), len(ip)) // the capture keeps a segment's start
	if ihl+20 > total {
		return
	}
	tcp := ip[ihl:total]
	off := int(tcp[12]>>4) * 4
	if off > len(tcp) {
		return
	}
	src, dst := binary.BigEndian.Uint16(tcp[0:2]), binary.BigEndian.Uint16(tcp[2:4])
	w.payload(src, dst, tcp[off:], at)
}

// payload moves the streams' times on by one segment's bytes.
func (w *wireCapture) payload(src, dst uint16, p []byte, at int64) {
	switch {
	case dst == w.relia: // the client's request
		if bytes.HasPrefix(p, []byte("POST ")) {
			w.headAt[src] = at
		}
		if name, ok := streamName(p); ok {
			w.clientOf[src] = name
			w.times(name).in = w.headAt[src]
		}
	case dst == w.provider: // relia's request to the provider
		if name, ok := streamName(p); ok {
			w.upstreamOf[src] = name
			if t := w.times(name); t.out == 0 {
				t.out = at
			}
		}
	case src == w.provider: // the provider's answer
		if t := w.streams[w.upstreamOf[dst]]; t != nil && t.firstIn == 0 && bytes.Contains(p, contentToken) {
			t.firstIn = at
		}
	case src == w.relia: // relia's answer to the client
		if t := w.streams[w.clientOf[dst]]; t != nil && t.firstOut == 0 && bytes.Contains(p, contentToken) {
			t.firstOut = at
		}
	}
}

func (w *wireCapture) times(name string) *wireTimes {
	t := w.streams[name]
	if t == nil {
		t = &wireTimes{}
		w.streams[name] = t
	}
	return t
}

// streamName returns the stream's name from a request body's marker.
func streamName(p []byte) (string, bool) {
	i := bytes.Index(p, []byte(ttftMarker))
	if i < 0 {
		return "", false
	}
	rest := p[i+len(ttftMarker):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return "", false
	}
	return string(rest[:j]), true
}

// wireResult is relia's own time to first token over the streams the
// capture saw whole.
type wireResult struct {
	// added is relia's time to first token less the provider's; ask and
	// answer are its two parts: from the request's arrival to its sending
	// on, and from the first token's arrival to its sending on. Seconds,
	// each sorted.
	added, ask, answer []float64
	// provider is the provider's own span, from relia's request in to
	// its first token out: the same kind of work by the simulator (a Go
	// HTTP server on the other core), for scale.
	provider       []float64
	partial, drops int
	packets        int
	// maxGap is the longest time between two requests' arrivals and
	// densest the most requests that arrived within one millisecond: how
	// smoothly the step's client sent. A client held off its core sends
	// the streams it owes at once when it runs again, and relia's queue
	// then holds the clump.
	maxGap  float64
	densest int
	// rate is the streams a second the run was scheduled at (set by the
	// step, not the capture).
	rate float64
	// slowAt is the arrival of each stream whose added time was over
	// 1 ms, in nanoseconds of the wall clock; collections, the starts of
	// the target's collections during the run (set by the step).
	slowAt      []int64
	collections []time.Time
}

// slowNear counts the slow streams that arrived within window of the
// start of one of the collections.
func (r wireResult) slowNear(collections []time.Time, window time.Duration) int {
	n := 0
	for _, at := range r.slowAt {
		for _, c := range collections {
			if d := at - c.UnixNano(); d >= 0 && d < int64(window) {
				n++
				break
			}
		}
	}
	return n
}

// finish stops the capture and returns what it measured.
func (w *wireCapture) finish() (wireResult, error) {
	w.file.SetReadDeadline(time.Now())
	err := <-w.done
	// The packets since the last block handed over are in a block the
	// kernel hands over within ringTimeout.
	time.Sleep(5 * ringTimeout)
	var stats *unix.TpacketStatsV3
	var serr error
	w.raw.Control(func(fd uintptr) {
		w.takeBlocks()
		stats, serr = unix.GetsockoptTpacketStatsV3(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS)
	})
	unix.Munmap(w.ring)
	w.file.Close()
	r, _ := w.results()
	if serr == nil {
		r.drops, r.packets = int(stats.Drops), int(stats.Packets)
	}
	return r, err
}

// results computes the streams' times from what the capture saw.
func (w *wireCapture) results() (wireResult, error) {
	var r wireResult
	for _, t := range w.streams {
		if t.in == 0 || t.out == 0 || t.firstIn == 0 || t.firstOut == 0 {
			r.partial++
			continue
		}
		added := (t.firstOut - t.in) - (t.firstIn - t.out)
		r.added = append(r.added, float64(added)/1e9)
		if added > int64(time.Millisecond) {
			r.slowAt = append(r.slowAt, t.in)
		}
		r.ask = append(r.ask, float64(t.out-t.in)/1e9)
		r.answer = append(r.answer, float64(t.firstOut-t.firstIn)/1e9)
		r.provider = append(r.provider, float64(t.firstIn-t.out)/1e9)
	}
	r.maxGap, r.densest = arrivals(w.streams)
	slices.Sort(r.added)
	slices.Sort(r.ask)
	slices.Sort(r.answer)
	slices.Sort(r.provider)
	return r, nil
}

// arrivals returns the longest gap between two requests' arrivals, in
// seconds, and the most requests that arrived within one millisecond.
func arrivals(streams map[string]*wireTimes) (maxGap float64, densest int) {
	var in []int64
	for _, t := range streams {
		if t.in != 0 {
			in = append(in, t.in)
		}
	}
	slices.Sort(in)
	first := 0
	for i := range in {
		if i > 0 {
			maxGap = max(maxGap, float64(in[i]-in[i-1])/1e9)
		}
		for in[i]-in[first] >= int64(time.Millisecond) {
			first++
		}
		densest = max(densest, i-first+1)
	}
	return maxGap, densest
}

// quantile returns the q quantile of sorted times.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(float64(len(sorted)-1)*q)]
}
