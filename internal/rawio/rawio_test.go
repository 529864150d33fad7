package rawio_test

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/relia-dev/relia/internal/rawio"
)

// pair returns both ends of a loopback TCP connection, the server's end
// accepted through rawio.Listener.
func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := rawio.Listener(ln).Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestWrappedConnReadsWritesAndEnds(t *testing.T) {
	client, server := pair(t)
	if runtime.GOOS == "linux" {
		if _, ok := server.(*net.TCPConn); ok {
			t.Fatal("the listener did not wrap the connection")
		}
	}
	big := make([]byte, 4<<20) // larger than the socket buffers: Write waits for room
	for i := range big {
		big[i] = byte(i)
	}
	go func() {
		server.Write(big)
		server.(interface{ CloseWrite() error }).CloseWrite() // promoted from *net.TCPConn
	}()
	got, err := io.ReadAll(client)
	if err != nil || len(got) != len(big) || got[len(got)-1] != big[len(big)-1] {
		t.Fatalf("read %d bytes, err %v", len(got), err)
	}

	if _, err := client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := server.Read(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	client.Close()
	if _, err := server.Read(buf); err != io.EOF {
		t.Fatalf("after the peer closed: %v, want io.EOF", err)
	}
}

func TestWrappedConnHonoursDeadlines(t *testing.T) {
	_, server := pair(t)
	server.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := server.Read(make([]byte, 8))
	var opErr *net.OpError
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &opErr) {
		t.Fatalf("read past the deadline: %v, want a *net.OpError with os.ErrDeadlineExceeded", err)
	}
}

func TestTryReadDoesNotWait(t *testing.T) {
	client, server := pair(t)
	rc := rawio.New(client)
	if rc == nil {
		t.Skip("raw I/O is Linux only")
	}
	buf := make([]byte, 8)
	if n, ready, err := rc.TryRead(buf); ready || n != 0 || err != nil {
		t.Fatalf("nothing sent: n %d ready %v err %v", n, ready, err)
	}
	server.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, ready, err := rc.TryRead(buf)
		if ready {
			if n != 0 || err != io.EOF {
				t.Fatalf("after close: n %d err %v, want io.EOF", n, err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the close never became readable")
		}
		runtime.Gosched()
	}
}

// TestWriteBySetsTheDeadlineOnlyToWait checks that WriteBy on a wrapped
// connection spends no deadline on a write that fits in the socket's
// buffer (a passed deadline does not fail it), bounds one that must wait,
// and leaves no deadline behind that would fail a later write.
func TestWriteBySetsTheDeadlineOnlyToWait(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the deadline is set only to wait on Linux")
	}
	client, server := pair(t)
	past := time.Now().Add(-time.Second)
	if err := rawio.WriteBy(server, []byte("small"), past); err != nil {
		t.Fatalf("a write with room and a passed deadline: %v, want it written", err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "small" {
		t.Fatalf("read %q, %v", buf, err)
	}

	// Nobody reads: the buffers fill and the write waits, until its
	// deadline.
	big := make([]byte, 16<<20)
	err := rawio.WriteBy(server, big, time.Now().Add(50*time.Millisecond))
	var opErr *net.OpError
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &opErr) {
		t.Fatalf("a write that waited past its deadline: %v, want a *net.OpError with os.ErrDeadlineExceeded", err)
	}

	// A write that waits and ends in time clears its deadline.
	client2, server2 := pair(t)
	go io.Copy(io.Discard, client2)
	deadline := time.Now().Add(time.Second)
	if err := rawio.WriteBy(server2, big, deadline); err != nil {
		t.Fatalf("a write read as it goes: %v", err)
	}
	time.Sleep(time.Until(deadline) + 10*time.Millisecond)
	if _, err := server2.Write([]byte("later")); err != nil {
		t.Fatalf("a write after WriteBy's deadline passed: %v, want it written (no deadline left set)", err)
	}
}
