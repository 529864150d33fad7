package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"
)

// plainProgressEvery is how often a run prints a progress line off a
// terminal, where a line redrawn every second would fill the log.
const plainProgressEvery = 10 * time.Second

// progressPrinter prints a run's progress on stderr: on a terminal one
// line redrawn in place every second; elsewhere (a CI log, a file) a
// plain line every plainProgressEvery, and at once when the process gets
// a progress signal (SIGUSR1, or SIGINFO, Ctrl-T, where the system has
// it), as dd does.
type progressPrinter struct {
	w        io.Writer
	terminal bool
	next     time.Duration
	asked    chan os.Signal
}

func newProgressPrinter(w io.Writer) *progressPrinter {
	p := &progressPrinter{w: w, terminal: isTerminal(w), next: plainProgressEvery, asked: make(chan os.Signal, 1)}
	if len(progressSignals) > 0 {
		signal.Notify(p.asked, progressSignals...)
	}
	return p
}

// print shows line, a snapshot taken elapsed into the run, if it is due.
func (p *progressPrinter) print(elapsed time.Duration, line string) {
	if p.terminal {
		fmt.Fprintf(p.w, "\r%-100s", line)
		return
	}
	select {
	case <-p.asked:
	default:
		if elapsed < p.next {
			return
		}
		for p.next <= elapsed {
			p.next += plainProgressEvery
		}
	}
	fmt.Fprintln(p.w, line)
}

// requests forwards the progress signals as requests for a line now, for
// runners that print their progress themselves.
func (p *progressPrinter) requests() <-chan struct{} {
	out := make(chan struct{}, 1)
	go func() { // ends with close
		for range p.asked {
			select {
			case out <- struct{}{}:
			default:
			}
		}
	}()
	return out
}

// close stops listening for signals and ends the terminal's line.
func (p *progressPrinter) close(printed bool) {
	signal.Stop(p.asked)
	close(p.asked)
	if p.terminal && printed {
		fmt.Fprintln(p.w)
	}
}
