//go:build linux

// Command sockmap is a TCP relay that forwards in the kernel: each pair of
// sockets (client and upstream) goes into a BPF sockhash, and an sk_skb
// verdict program redirects every segment that arrives on one socket to
// the other's send path, so no byte passes through user space. The fault
// harness runs it as a reference beside haproxy: it answers whether moving
// relia's pass-through out of user space would make it faster.
//
//	sockmap -listen 127.0.0.1:9000 -upstream 127.0.0.1:8080
//	sockmap -check   # exit status 0 when this machine can run it
//
// It needs Linux and CAP_BPF (or root); without them it exits with the
// loader's error before it prints "ready". It is a benchmark reference, not
// a product: a link is torn down when either side sends FIN or fails,
// without waiting for segments still queued for the other side.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "address to accept clients on")
	upstream := flag.String("upstream", "127.0.0.1:8080", "address each client is relayed to")
	check := flag.Bool("check", false, "load and attach the program, then exit: 0 when this machine can run the relay")
	flag.Parse()
	r, err := newRelay()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sockmap:", err)
		os.Exit(1)
	}
	if *check {
		return
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sockmap:", err)
		os.Exit(1)
	}
	go r.reap()
	fmt.Println("ready")
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			if err := r.splice(c.(*net.TCPConn), *upstream); err != nil {
				log.Print(err)
			}
		}()
	}
}

// relay holds the BPF objects and the live links, by file descriptor.
type relay struct {
	sockets *ebpf.Map // socket cookie -> the peer socket to redirect to
	forward *ebpf.Map // socket cookie -> bytes redirected; present while forwarding
	epoll   int       // hang-ups and errors of every relayed socket
	mu      sync.Mutex
	links   map[int]*pair
}

type pair struct {
	a, b             *os.File
	cookieA, cookieB uint64
}

// verdict is the sk_skb program, in BPF assembly so that building needs no
// C compiler:
//
//	key = bpf_get_socket_cookie(skb)
//	if (n = forward[key]) == NULL: return SK_PASS
//	atomic n += skb->len
//	return bpf_sk_redirect_hash(skb, sockets, &key, 0)  // to the peer's egress
func verdict(sockets, forward *ebpf.Map) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.FnGetSocketCookie.Call(),
		asm.StoreMem(asm.RFP, -8, asm.R0, asm.DWord),
		asm.LoadMapPtr(asm.R1, forward.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -8),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(asm.R1, asm.R6, 0, asm.Word), // __sk_buff.len
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.LoadMapPtr(asm.R2, sockets.FD()),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -8),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnSkRedirectHash.Call(),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("pass"), // SK_PASS
		asm.Return(),
	}
}

func newRelay() (*relay, error) {
	sockets, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.SockHash, KeySize: 8, ValueSize: 4, MaxEntries: 1 << 16})
	if err != nil {
		return nil, fmt.Errorf("creating the sockhash (needs CAP_BPF): %w", err)
	}
	forward, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 8, MaxEntries: 1 << 16})
	if err != nil {
		return nil, fmt.Errorf("creating the forward map: %w", err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SkSKB, AttachType: ebpf.AttachSkSKBVerdict,
		Instructions: verdict(sockets, forward), License: "GPL"})
	if err != nil {
		return nil, fmt.Errorf("loading the verdict program: %w", err)
	}
	if err := link.RawAttachProgram(link.RawAttachProgramOptions{Target: sockets.FD(), Program: prog, Attach: ebpf.AttachSkSKBVerdict}); err != nil {
		return nil, fmt.Errorf("attaching the verdict program: %w", err)
	}
	// A private epoll, asked only for hang-ups: data arriving on a
	// relayed socket wakes nobody, unlike the Go runtime's poller.
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &relay{sockets: sockets, forward: forward, epoll: ep, links: map[int]*pair{}}, nil
}

// splice dials the upstream and hands both sockets to the kernel. The
// sockets leave the Go runtime's poller (File duplicates them, Close
// drops the originals' registration) so that forwarded segments wake no
// goroutine.
func (r *relay) splice(client *net.TCPConn, upstream string) error {
	defer client.Close()
	up, err := net.Dial("tcp", upstream)
	if err != nil {
		return err
	}
	defer up.Close()
	fa, err := client.File()
	if err != nil {
		return err
	}
	fb, err := up.(*net.TCPConn).File()
	if err != nil {
		fa.Close()
		return err
	}
	p := &pair{a: fa, b: fb}
	a, b := int(fa.Fd()), int(fb.Fd())
	if p.cookieA, err = unix.GetsockoptUint64(a, unix.SOL_SOCKET, unix.SO_COOKIE); err == nil {
		p.cookieB, err = unix.GetsockoptUint64(b, unix.SOL_SOCKET, unix.SO_COOKIE)
	}
	// Each socket is stored under its peer's cookie: a segment arriving
	// on one is looked up by its own cookie and finds the other. A client
	// that already hung up (wrk probes once per run) cannot be inserted.
	if err == nil {
		err = r.sockets.Update(p.cookieA, uint32(b), ebpf.UpdateAny)
	}
	if err == nil {
		err = r.sockets.Update(p.cookieB, uint32(a), ebpf.UpdateAny)
	}
	if err == nil {
		err = r.forward.Update(p.cookieA, uint64(0), ebpf.UpdateAny)
	}
	if err == nil {
		err = r.forward.Update(p.cookieB, uint64(0), ebpf.UpdateAny)
	}
	if err != nil {
		r.drop(p)
		return nil
	}
	r.mu.Lock()
	r.links[a], r.links[b] = p, p
	r.mu.Unlock()
	for _, fd := range []int{a, b} {
		ev := unix.EpollEvent{Events: unix.EPOLLRDHUP, Fd: int32(fd)}
		if err := unix.EpollCtl(r.epoll, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			r.close(fd)
			return err
		}
		// Bytes that arrived before the socket joined the map wait in its
		// receive queue with no new arrival to trigger the verdict; setting
		// SO_RCVLOWAT makes TCP signal data-ready once more, which runs it.
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVLOWAT, 1)
	}
	return nil
}

// reap tears links down as their sockets hang up.
func (r *relay) reap() {
	events := make([]unix.EpollEvent, 64)
	for {
		n, err := unix.EpollWait(r.epoll, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			log.Fatal(err)
		}
		for _, ev := range events[:n] {
			r.close(int(ev.Fd))
		}
	}
}

func (r *relay) close(fd int) {
	r.mu.Lock()
	p := r.links[fd]
	if p != nil {
		delete(r.links, int(p.a.Fd()))
		delete(r.links, int(p.b.Fd()))
	}
	r.mu.Unlock()
	if p != nil {
		r.drop(p)
	}
}

func (r *relay) drop(p *pair) {
	r.forward.Delete(p.cookieA)
	r.forward.Delete(p.cookieB)
	r.sockets.Delete(p.cookieA)
	r.sockets.Delete(p.cookieB)
	p.a.Close() // closing removes the fd from the epoll set too
	p.b.Close()
}
