// Package clock is the injectable source of time used by every
// time-dependent part of relia: backoff, breakers, budgets, pacing,
// leases and burn-rate windows all take a Clock, so their logic is tested
// by advancing a Fake instead of sleeping.
//
// Production code passes Real() (or leaves an options field nil and calls
// OrReal). Tests do:
//
//	c := clock.NewFake(time.Time{})
//	go func() { clock.Sleep(ctx, c, time.Second); close(done) }()
//	c.BlockUntil(1)        // the goroutine is now waiting on a timer
//	c.Advance(time.Second) // and is released without real time passing
package clock
