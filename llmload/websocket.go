package llmload

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/relia-dev/relia/ai/wire"
	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/outcome"
)

// streamWebSocket sends one request over a WebSocket and reads its answer
// into s: every message back is a token (see APIWebSocket).
func (r *run) streamWebSocket(ctx context.Context, s *Sample, body []byte, idle clock.Timer, stalled *atomic.Bool, itl func(time.Duration)) {
	s.Sent = r.clk.Now()
	r.res.ScheduleLag.Record(outcome.Outcome{Start: s.Due, Latency: s.Sent.Sub(s.Due)})
	conn, resp, err := websocket.Dial(ctx, r.o.URL, &websocket.DialOptions{HTTPHeader: r.o.Header.Clone()})
	if resp != nil {
		s.Status = resp.StatusCode
	}
	if err != nil {
		s.End, s.Err = r.clk.Now(), err
		switch {
		case stalled.Load():
			s.Ending, s.Class = EndStalled, outcome.ClassTimeout
		case resp != nil && resp.StatusCode != http.StatusSwitchingProtocols:
			s.Ending, s.Class = EndStatus, outcome.ClassStatus
		default:
			s.Ending, s.Class = EndFailed, outcome.Classify(err)
		}
		return
	}
	defer conn.CloseNow()
	conn.SetReadLimit(wire.DefaultMaxEvent)
	s.Head = r.clk.Now()
	idle.Reset(r.o.IdleTimeout)
	if err := conn.Write(ctx, websocket.MessageText, body); err != nil {
		s.End, s.Ending, s.Class, s.Err = r.clk.Now(), EndFailed, outcome.Classify(err), err
		return
	}
	s.BytesOut = int64(len(body))
	for {
		_, msg, err := conn.Read(ctx)
		now := r.clk.Now()
		if err != nil {
			s.End, s.Err = now, err
			switch status := websocket.CloseStatus(err); {
			case status == websocket.StatusNormalClosure:
				s.Ending, s.Err = EndDone, nil
			case status != -1:
				s.Ending = EndErrorEvent
			case stalled.Load():
				s.Ending = EndStalled
			case ctx.Err() != nil:
				s.Ending = EndFailed
			case errors.Is(err, websocket.ErrMessageTooBig):
				s.Ending = EndFailed
			default:
				s.Ending = EndTruncated
			}
			break
		}
		idle.Reset(r.o.IdleTimeout)
		s.BytesIn += int64(len(msg))
		if bytes.Equal(msg, wire.Done) {
			s.End, s.Ending = now, EndDone
			break
		}
		s.output(now, 1, itl)
	}
	s.OutputTokens = s.Events
	s.Class = endingClass(s.Ending, ctx.Err() != nil && !stalled.Load())
}
