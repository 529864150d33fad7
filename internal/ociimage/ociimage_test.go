package ociimage

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeImage(t *testing.T, s Spec) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestWriteReadUnpack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "prog")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := Spec{Binary: bin, Path: "/usr/local/bin/prog", Ref: "example.test/prog:v1", Arch: "arm64", CACerts: ca, Cmd: []string{"--help"}}
	first := writeImage(t, s)
	if !bytes.Equal(first, writeImage(t, s)) {
		t.Error("two writes of the same image differ: the build is not reproducible")
	}
	archive := filepath.Join(dir, "image.tar")
	if err := os.WriteFile(archive, first, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := Read(archive)
	if err != nil {
		t.Fatal(err)
	}
	c := img.Config
	if c.Architecture != "arm64" || c.OS != "linux" || strings.Join(c.Config.Entrypoint, " ") != "/usr/local/bin/prog" ||
		strings.Join(c.Config.Cmd, " ") != "--help" || c.Config.User != "65532:65532" {
		t.Errorf("config: %+v", c)
	}
	if got := img.Index.Manifests[0].Annotations["io.containerd.image.name"]; got != "example.test/prog:v1" {
		t.Errorf("image name %q", got)
	}
	if got := img.Index.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; got != "v1" {
		t.Errorf("tag %q", got)
	}
	root := filepath.Join(dir, "rootfs")
	if err := img.Unpack(root); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"usr/local/bin/prog":                "#!/bin/sh\necho hi\n",
		"etc/ssl/certs/ca-certificates.crt": "-----BEGIN CERTIFICATE-----\n",
		"etc/passwd":                        "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
	} {
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil || string(data) != want {
			t.Errorf("%s: %q, %v; want %q", name, data, err, want)
		}
	}
	if st, err := os.Stat(filepath.Join(root, "usr/local/bin/prog")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("the binary is not executable: %v %v", st.Mode(), err)
	}
	if st, err := os.Stat(filepath.Join(root, "tmp")); err != nil || !st.IsDir() {
		t.Errorf("no /tmp: %v", err)
	}
}

// TestReadRefusesTamperedBlobs: a layer whose bytes do not match its
// digest is refused.
func TestReadRefusesTamperedBlobs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "prog")
	if err := os.WriteFile(bin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	good := writeImage(t, Spec{Binary: bin, Path: "/prog", Ref: "x/prog:latest", Arch: "amd64"})
	// Rewrite the archive with one byte of the layer's gzip changed.
	var out bytes.Buffer
	tr, tw := tar.NewReader(bytes.NewReader(good)), tar.NewWriter(&out)
	img, _ := readBytes(t, good)
	layer := blobPath(img.Manifest.Layers[0].Digest)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		if h.Name == layer {
			data[len(data)-5] ^= 0xff
		}
		_ = tw.WriteHeader(h)
		_, _ = tw.Write(data)
	}
	_ = tw.Close()
	bad := filepath.Join(dir, "bad.tar")
	if err := os.WriteFile(bad, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(bad); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("tampered layer read: %v", err)
	}
}

func readBytes(t *testing.T, archive []byte) (*Image, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "i.tar")
	if err := os.WriteFile(p, archive, 0o644); err != nil {
		t.Fatal(err)
	}
	return Read(p)
}
