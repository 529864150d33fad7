package resilience

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"time"
)

// Jitter says how a backoff delay is randomised, following Marc Brooker,
// "Exponential Backoff And Jitter", AWS Architecture Blog (2015). Jitter
// spreads the retries of many clients that failed together, so they do not
// come back together; Full and Decorrelated do that best.
type Jitter uint8

// The jitter modes. The zero value, JitterFull, is the default.
const (
	// JitterFull waits rand(0, min(Cap, Base*Multiplier^(n-1))).
	JitterFull Jitter = iota
	// JitterEqual waits half of min(Cap, Base*Multiplier^(n-1)) plus
	// rand(0, that half): never less than half the exponential delay.
	JitterEqual
	// JitterDecorrelated waits min(Cap, rand(Base, previous*3)), the
	// previous delay starting at Base. It ignores Multiplier: the growth
	// comes from the factor 3 of the article.
	JitterDecorrelated
	// JitterNone waits exactly min(Cap, Base*Multiplier^(n-1)).
	JitterNone
)

var jitterNames = [...]string{"full", "equal", "decorrelated", "none"}

// String returns the mode's name.
func (j Jitter) String() string {
	if int(j) < len(jitterNames) {
		return jitterNames[j]
	}
	return fmt.Sprintf("Jitter(%d)", uint8(j))
}

// BackoffSettings are the parameters of Backoff. NewRetry fills them from
// RetrySettings, defaults included.
type BackoffSettings struct {
	// Base is the first delay (before jitter); > 0.
	Base time.Duration
	// Cap bounds every delay; >= Base.
	Cap time.Duration
	// Multiplier is the growth per retry; >= 1.
	Multiplier float64
	// Jitter is the randomisation mode.
	Jitter Jitter
}

// Validate reports whether s can be passed to Backoff.
func (s BackoffSettings) Validate() error {
	switch {
	case s.Base <= 0:
		return fmt.Errorf("backoff base %s not positive", s.Base)
	case s.Cap < s.Base:
		return fmt.Errorf("backoff cap %s below base %s", s.Cap, s.Base)
	case !(s.Multiplier >= 1) || math.IsInf(s.Multiplier, 0):
		return fmt.Errorf("backoff multiplier %v below 1 or not finite", s.Multiplier)
	case s.Jitter > JitterNone:
		return errors.New("unknown jitter mode " + s.Jitter.String())
	}
	return nil
}

// Backoff returns the delay before retry number attempt (1 for the first
// retry, the second attempt). prev is the delay returned for the previous
// retry (zero before the first); only JitterDecorrelated uses it. src is the
// random source; nil means math/rand/v2's top-level generator, which is
// safe for concurrent use without a shared lock. A seeded source
// (rand.NewPCG) makes the delays reproducible.
//
// Backoff is a pure function of its arguments (and the source's state); s
// must be valid (Validate). The result is in [0, s.Cap].
func Backoff(s BackoffSettings, attempt int, prev time.Duration, src rand.Source) time.Duration {
	if s.Jitter == JitterDecorrelated {
		if prev < s.Base {
			prev = s.Base
		}
		hi := time.Duration(math.MaxInt64)
		if prev <= hi/3 {
			hi = prev * 3
		}
		return min(s.Cap, s.Base+randDuration(src, hi-s.Base))
	}
	exp := exponential(s, attempt)
	switch s.Jitter {
	case JitterFull:
		return randDuration(src, exp)
	case JitterEqual:
		half := exp / 2
		return half + randDuration(src, exp-half)
	default:
		return exp
	}
}

// exponential is min(Cap, Base*Multiplier^(attempt-1)), computed in floating
// point so that a large attempt saturates at Cap instead of overflowing.
func exponential(s BackoffSettings, attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := float64(s.Base) * math.Pow(s.Multiplier, float64(attempt-1))
	if d >= float64(s.Cap) || math.IsInf(d, 0) || math.IsNaN(d) {
		return s.Cap
	}
	return time.Duration(d)
}

// randDuration returns a uniform duration in [0, n], n >= 0. The bound is
// inclusive so that the cap itself can be drawn; Lemire's multiply-shift
// keeps it free of modulo bias and division.
func randDuration(src rand.Source, n time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	var u uint64
	if src == nil {
		u = rand.Uint64()
	} else {
		u = src.Uint64()
	}
	hi, _ := bits.Mul64(u, uint64(n)+1)
	return time.Duration(hi)
}
