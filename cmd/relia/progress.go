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
	printed  bool // a terminal line is on screen
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
		p.printed = true
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

// close stops listening for signals and ends the terminal's line; a
// second close does nothing. The run that printed must have ended: print
// is not called after close.
func (p *progressPrinter) close() {
	signal.Stop(p.asked)
	if p.printed {
		fmt.Fprintln(p.w)
		p.printed = false
	}
}
