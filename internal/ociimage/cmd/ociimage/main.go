// Command ociimage writes relia's OCI image archive from a static binary;
// `make image` runs it:
//
//	go run ./internal/ociimage/cmd/ociimage -binary bin/relia-linux-amd64 \
//	    -ref ghcr.io/relia-dev/relia:latest -out bin/relia-image.tar
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"

	"github.com/relia-dev/relia/internal/ociimage"
)

func main() {
	var s ociimage.Spec
	out := flag.String("out", "bin/relia-image.tar", "the image archive to write")
	version := flag.String("version", "", "org.opencontainers.image.version label")
	flag.StringVar(&s.Binary, "binary", "", "the static binary to ship")
	flag.StringVar(&s.Path, "path", "/relia", "where the binary lives in the image (the entrypoint)")
	flag.StringVar(&s.Ref, "ref", "ghcr.io/relia-dev/relia:latest", "the image's name")
	flag.StringVar(&s.Arch, "arch", runtime.GOARCH, "the binary's architecture")
	flag.StringVar(&s.CACerts, "ca-certs", "", "PEM bundle to install as /etc/ssl/certs/ca-certificates.crt")
	flag.Parse()
	s.Labels = map[string]string{
		"org.opencontainers.image.title":  "relia",
		"org.opencontainers.image.source": "https://github.com/relia-dev/relia",
	}
	if *version != "" {
		s.Labels["org.opencontainers.image.version"] = *version
	}
	if err := write(*out, s); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}

func write(out string, s ociimage.Spec) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := ociimage.Write(f, s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
