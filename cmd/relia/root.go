package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Exit codes, the same for every subcommand.
const (
	exitPass     = 0 // everything passed
	exitFailed   = 1 // a verdict failed: a threshold or an SLO
	exitBadInput = 2 // bad flags, arguments or config
	exitAborted  = 3 // aborted by a safety condition
	exitRuntime  = 4 // a runtime error
	// exitInconclusive: the load generator could not keep its own
	// schedule, so the service was not judged (its figures are reported).
	exitInconclusive = 5
)

// exitError carries a specific exit code out of a subcommand.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// badInput marks err as the user's input being wrong (exit code 2).
func badInput(err error) error { return &exitError{code: exitBadInput, err: err} }

// subcommands holds the constructors of relia's subcommands; each
// subcommand's file adds itself in an init function, so subcommands are
// added without touching this file.
var subcommands []func() *cobra.Command

func register(newCmd func() *cobra.Command) { subcommands = append(subcommands, newCmd) }

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "relia",
		Short: "Reliability engineering in one binary",
		Long: `relia protects services with resilience policies, observes them, proves
them under load and faults against SLOs, and plans error budgets.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	// Flag errors are the user's input being wrong.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return badInput(err) })
	for _, newCmd := range subcommands {
		root.AddCommand(newCmd())
	}
	return root
}

// run executes the command line and maps errors to relia's exit codes.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitPass
	}
	fmt.Fprintln(stderr, "relia:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	// cobra reports unknown commands and bad arguments as plain errors.
	return exitBadInput
}
