//go:build linux

package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"

	"golang.org/x/sys/unix"
)

// TestAIAnswersGoOutInFewWrites counts the data segments a client of an
// AI route receives (TCP_INFO; on loopback each of the gateway's writes
// is one segment): a non-streaming answer's head and body go in one
// write, and a stream whose provider answered at once in two, its head
// with its first event and its last events with the last chunk. A write
// each (and a wake-up of the client each) cost a stream 35 µs more CPU
// in BenchmarkAIRouteStreamAtOnce. Such a stream, which never waits for
// its provider, is not put in the watch for hang-ups either
// (aiWriter.StreamWaits): its writes see one.
func TestAIAnswersGoOutInFewWrites(t *testing.T) {
	route := "    - {name: llm, match: {path: {prefix: /v1}}, ai: assist}\n"
	for _, tc := range []struct {
		name     string
		provider string
		body     string
		writes   uint32
	}{
		{"chat", rawChatProvider(t), benchChatBody, 1},
		{"stream", rawProvider(t, streamAnswer(5)), `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}],"max_tokens":5}`, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, c := aiBenchGatewayAndConn(t, tc.provider, route)
			br := bufio.NewReader(c)
			for i := range 3 { // the first exchange opens the provider's connection
				before := dataSegmentsIn(t, c)
				if _, err := c.Write(chatRequest(tc.body)); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("exchange %d: %d %v: %s", i, resp.StatusCode, err, body)
				}
				if got := dataSegmentsIn(t, c) - before; got != tc.writes {
					t.Errorf("exchange %d: the answer came in %d writes, want %d", i, got, tc.writes)
				}
			}
			if n := g.hangUps.watched.Load(); n != 0 {
				t.Errorf("%d answers that never waited were watched for hang-ups", n)
			}
		})
	}
}

// dataSegmentsIn is how many segments with data c has received.
func dataSegmentsIn(t *testing.T, c net.Conn) uint32 {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	var ierr error
	rc.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if ierr != nil {
		t.Fatal(ierr)
	}
	return info.Data_segs_in
}
