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
	"syscall"
	"time"

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
	if err := w.setup(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// The socket waits on the runtime's poller, not in a blocking
	// receive: a thread blocked in the kernel keeps its Go processor
	// until the runtime's monitor takes it back, and the harness runs on
	// one processor (pinned to CPU 0), which the step's client needs to
	// start its streams on time.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	w.file = os.NewFile(uintptr(fd), "packet capture")
	raw, err := w.file.SyscallConn()
	if err != nil {
		w.file.Close()
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
	if err := unix.SetsockoptInt(w.fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fmt.Errorf("SO_TIMESTAMPNS: %w", err)
	}
	if err := unix.SetsockoptInt(w.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 256<<20); err != nil {
		unix.SetsockoptInt(w.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 256<<20)
	}
	return unix.Bind(w.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: lo.Index})
}

// segmentFilter passes IPv4 TCP segments that carry a payload and have
// port a or b at either end, whole; it drops everything else.
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
		bpf.RetConstant{Val: 0},       // 19: drop
		bpf.RetConstant{Val: 1 << 16}, // 20: the whole segment
	}
}

// read takes packets as they come until finish sets the socket's read
// deadline.
func (w *wireCapture) read() error {
	buf := make([]byte, 1<<16)
	oob := make([]byte, 128)
	var failed error
	err := w.raw.Read(func(fd uintptr) bool {
		failed = w.drain(int(fd), buf, oob)
		return failed != unix.EAGAIN // wait for more on the poller
	})
	if failed != nil && failed != unix.EAGAIN {
		return failed
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	return err
}

// drain takes the packets queued on the socket fd until none is left
// (unix.EAGAIN) or one fails, letting the process's other goroutines
// run between batches.
func (w *wireCapture) drain(fd int, buf, oob []byte) error {
	for taken := 1; ; taken++ {
		n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		at, ok := kernelStamp(oob[:oobn])
		if !ok {
			return errors.New("a packet came without its kernel timestamp")
		}
		w.segment(buf[:n], at)
		if taken%64 == 0 {
			runtime.Gosched()
		}
	}
}

// kernelStamp reads the SCM_TIMESTAMPNS control message.
func kernelStamp(oob []byte) (int64, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
			return sec*1e9 + nsec, true
		}
	}
	return 0, false
}

// segment reads one captured frame: Ethernet, IPv4, TCP, payload.
func (w *wireCapture) segment(frame []byte, at int64) {
	const eth = 14
	if len(frame) < eth+20 {
		return
	}
	ip := frame[eth:]
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if total > len(ip) || ihl+20 > total {
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
}

// finish stops the capture and returns what it measured.
func (w *wireCapture) finish() (wireResult, error) {
	w.file.SetReadDeadline(time.Now())
	err := <-w.done
	// What came between the reader's last wait and the deadline is
	// still queued.
	var stats *unix.TpacketStats
	var serr error
	w.raw.Control(func(fd uintptr) {
		buf, oob := make([]byte, 1<<16), make([]byte, 128)
		if derr := w.drain(int(fd), buf, oob); derr != unix.EAGAIN && err == nil {
			err = derr
		}
		stats, serr = unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS)
	})
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
		r.added = append(r.added, float64((t.firstOut-t.in)-(t.firstIn-t.out))/1e9)
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
