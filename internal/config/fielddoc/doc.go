// Package fielddoc reads the doc comments of relia's config structs from
// their Go source, so that the JSON Schemas internal/config derives by
// reflection describe every field with the same words as the code:
// `go generate ./internal/config` writes them into
// internal/config/fielddocs_gen.go, and a test there fails when that file
// is stale.
//
//	docs, err := fielddoc.Collect(root) // root: the module's directory
//	src, err := docs.GoFile("config")   // the generated Go file
//
// A config struct is a struct type with at least one field tagged
// `yaml:"..."`. A field's description is its doc comment (or its line
// comment) with the Go name it opens with replaced by its YAML key
// ("Attempts is the most attempts" becomes "attempts is the most
// attempts"), paragraphs kept, lines joined.
package fielddoc
