// Package config is the strict YAML loader that every relia config kind
// (SLO, Scenario, Gateway, Experiment) goes through, so that all of them
// share one envelope, one set of value types and one error format.
//
// A config file holds one or more YAML documents separated by ---, each
// a mapping with a kind and a version:
//
//	kind: SLO
//	version: relia/v1
//	metadata:
//	  name: checkout-availability
//	spec:
//	  objective: 99.9%
//	  period: 30d
//
// Loading is two steps: Parse (or ReadFile) splits the file into
// Documents and checks the envelope; the owning package picks the
// documents of its kind and calls Document.Decode with its own struct:
//
//	docs, err := config.ReadFile("slo.yaml")
//	...
//	for _, d := range docs {
//		if d.Kind != "SLO" {
//			continue
//		}
//		var s SLO
//		if err := d.Decode(&s); err != nil {
//			return err // slo.yaml:7:3: spec.objectiv: unknown field (did you mean objective?)
//		}
//		if s.Spec.Objective >= 1 {
//			return d.Errorf("spec.objective", "%v is not in (0, 1)", s.Spec.Objective)
//		}
//	}
//
// # Strictness and positions
//
// Decode rejects unknown fields, values of the wrong type, duplicate keys,
// missing required fields and, through the value types, negative
// durations and sizes and ratios outside [0, 1]. Every error is an *Error
// whose text is "file:line:col: field.path: message".
//
// Checks that only the owning kind knows (an objective must be below 1, a
// window may not exceed a period) happen after Decode, on the decoded
// struct; they report through Document.Errorf, which finds the field's
// node by its path in the document, so a kind's validation needs no
// position bookkeeping of its own. A field left out, whose default
// applies, is reported at its nearest present parent.
//
// A struct whose fields are alternatives rather than settings (an SLI is
// availability or latency) implements OneOf: Decode then requires exactly
// one of them and reports an unknown key as an unknown SLI kind rather
// than an unknown field.
//
// # Values
//
// Durations are time.Duration fields written "250ms", "1h30m", "7d" or
// "4w" (ParseDuration); public structs keep the standard type. Sizes are
// Size ("1MiB", "512KB"); ratios are Ratio (0.999 or "99.9%").
//
// # Schemas
//
// Schema derives a JSON Schema from a kind's struct with the same rules as
// Decode, so that docs/schema/<kind>.json can be generated rather than
// written by hand and editors can complete configs.
//
// Marshal writes a kind's struct back as a document that Decode reads
// unchanged, defaults left out; MarshalJSON writes the same document as
// JSON, for programs that serve a config (the gateway's admin API).
//
// ParseAny reads the YAML of other tools (OpenSLO, Sloth) with the same
// positions and strict decoding but without relia's envelope, for
// importers.
package config
