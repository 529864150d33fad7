package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/relia-dev/relia/experiment"
	"github.com/relia-dev/relia/gateway"
	"github.com/relia-dev/relia/internal/config"
	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/slo"
)

func init() { register(newSchemaCmd) }

// schemas are the JSON Schemas of the kinds relia reads, by kind; each is
// also published as docs/schema/<kind>.json.
var schemas = map[string]func() ([]byte, error){
	slo.Kind:        slo.JSONSchema,
	gateway.Kind:    gateway.JSONSchema,
	load.Kind:       load.JSONSchema,
	experiment.Kind: experiment.JSONSchema,
}

// allKindsSchema is docs/schema/relia.json: every kind, selected by the
// document's kind.
func allKindsSchema() ([]byte, error) {
	each := map[string][]byte{}
	for kind, f := range schemas {
		data, err := f()
		if err != nil {
			return nil, err
		}
		each[kind] = data
	}
	return config.KindsSchema(each)
}

// schemaOf returns the schema of a kind named in any case ("gateway",
// "Gateway"), or of every kind for "".
func schemaOf(name string) ([]byte, error) {
	if name == "" {
		return allKindsSchema()
	}
	for kind, f := range schemas {
		if strings.EqualFold(kind, name) {
			return f()
		}
	}
	kinds := make([]string, 0, len(schemas))
	for k := range schemas {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return nil, badInput(fmt.Errorf("no kind %q (kinds: %s)", name, strings.Join(kinds, ", ")))
}

func newSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema [KIND]",
		Short: "Print the JSON Schema of relia's config documents, for editors and CI",
		Long: `schema prints the JSON Schema (draft-07) that checks relia config documents:
without an argument, the schema of every kind, where each document's kind:
selects the schema it is checked by (docs/schema/relia.json), so one schema
checks a file of several documents; with a kind (gateway, scenario, slo,
experiment), that kind's alone (docs/schema/<kind>.json, also printed by
relia gateway schema, relia load schema, relia slo schema and
relia run schema). Every property is described in the words of the code's
documentation.

  relia schema > relia.json
  relia schema gateway`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			data, err := schemaOf(name)
			if err != nil {
				return err
			}
			return writeOut(cmd, "", data)
		},
	}
}

// newRunSchemaCmd is relia run schema: the experiment's schema, printed
// as relia load schema prints the scenario's.
func newRunSchemaCmd() *cobra.Command { return kindSchemaCmd(experiment.Kind, "experiment files") }

// kindSchemaCmd is the schema subcommand of the command that runs kind.
func kindSchemaCmd(kind, what string) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of " + what + ", for editors",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := schemaOf(kind)
			if err != nil {
				return runtimeErr(err)
			}
			return writeOut(cmd, "", data)
		},
	}
}
