// Command gen writes internal/config/fielddocs_gen.go from the doc
// comments of relia's config structs; `go generate ./internal/config`
// runs it from internal/config.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/relia-dev/relia/internal/config/fielddoc"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fielddoc:", err)
		os.Exit(1)
	}
}

func run() error {
	// go generate runs in internal/config: the module is two folders up.
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return err
	}
	docs, err := fielddoc.Collect(root)
	if err != nil {
		return err
	}
	src, err := docs.GoFile("config")
	if err != nil {
		return err
	}
	return os.WriteFile("fielddocs_gen.go", src, 0o644)
}
