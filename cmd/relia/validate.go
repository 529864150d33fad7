package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/relia-dev/relia/gateway"
	"github.com/relia-dev/relia/gateway/auth"
	"github.com/relia-dev/relia/internal/config"
	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/slo"
	"github.com/spf13/cobra"
)

func init() { register(newValidateCmd) }

// kindValidator checks every document of its kind in one file: it is given
// the whole file, because a kind's checks may cross its documents (SLO ids
// must be unique, OpenSLO SLOs refer to SLIs).
type kindValidator func(name string, data []byte) error

// validators maps each relia kind to the loader that owns it. A kind's
// loader ignores documents of other kinds, so one file may mix them.
var validators = map[string]kindValidator{
	slo.Kind:     func(name string, data []byte) error { _, err := slo.Parse(name, data); return err },
	gateway.Kind: func(name string, data []byte) error { _, err := gateway.Parse(name, data); return err },
	load.Kind:    validateScenarios,
	// An API key file holds APIKeys documents only, as the gateway's
	// auth.keysFile loader demands.
	auth.KeysKind: func(name string, data []byte) error { _, err := auth.ParseKeys(name, data); return err },
}

// registerValidator adds the loader of a kind whose command lives in
// another file.
func registerValidator(kind string, v kindValidator) { validators[kind] = v }

func newValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check relia config files of any kind (SLO, Gateway, ...) without running anything",
		Long: `validate reads each file, finds the kind of each YAML document in it and
checks it with that kind's own loader, exactly as the command that runs it
would. Every problem is reported as file:line:col with the field's path.
OpenSLO and Sloth SLO specs are checked as SLOs. Exit code 0 when every
file is valid, 2 otherwise.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			var errs []error
			for _, f := range files {
				kinds, err := validateFile(f)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok: %s\n", f, kinds)
			}
			if len(errs) > 0 {
				return badInput(errors.Join(errs...))
			}
			return nil
		},
	}
}

// validateFile checks one file and returns the kinds it holds, for the
// report.
func validateFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	docs, err := config.ParseAny(path, data)
	if err != nil {
		return "", err
	}
	var kinds []string
	var errs []error
	for _, d := range docs {
		kind := d.Kind
		switch {
		case d.Version == slo.FormatOpenSLO || d.Version == slo.FormatSloth || d.Version == slo.FormatSlothK8s:
			kind = slo.Kind // imported SLO formats
		case d.Version != config.Version:
			errs = append(errs, d.Errorf("version", "%q: want version: %s", d.Version, config.Version))
			continue
		case kind == "":
			errs = append(errs, d.Errorf("kind", "missing: every document needs a kind: (one of %s)", strings.Join(knownKinds(), ", ")))
			continue
		}
		if _, ok := validators[kind]; !ok {
			errs = append(errs, d.Errorf("kind", "unknown kind %q (want one of %s)", d.Kind, strings.Join(knownKinds(), ", ")))
			continue
		}
		if !slices.Contains(kinds, kind) {
			kinds = append(kinds, kind)
		}
	}
	for _, kind := range kinds {
		if err := validators[kind](path, data); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 && len(kinds) == 0 {
		errs = append(errs, fmt.Errorf("%s: no documents", path))
	}
	if len(errs) > 0 {
		return "", errors.Join(errs...)
	}
	return strings.Join(kinds, ", "), nil
}

func knownKinds() []string {
	kinds := make([]string, 0, len(validators))
	for k := range validators {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return kinds
}

// validateScenarios builds each scenario as relia load would, so that a
// bad template, JSON path or threshold is found here too, not only its
// shape.
func validateScenarios(name string, data []byte) error {
	scenarios, err := load.ParseScenarios(name, data)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range scenarios {
		if _, err := s.Build(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
