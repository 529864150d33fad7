package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Media types of the OCI image spec.
const (
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// nonroot is the user the image runs as, as distroless images name it.
const nonroot = 65532

// epoch is every timestamp in the image, so builds are reproducible.
var epoch = time.Unix(0, 0).UTC()

// Spec describes the image to write.
type Spec struct {
	// Binary is the static executable to ship.
	Binary string
	// Path is where it lives in the image and what the image runs
	// ("/relia").
	Path string
	// Ref names the image: "ghcr.io/relia-dev/relia:latest".
	Ref string
	// Arch and OS are the platform the binary is built for ("amd64",
	// "linux" when empty).
	Arch, OS string
	// CACerts, when not empty, is a PEM bundle installed as
	// /etc/ssl/certs/ca-certificates.crt for TLS clients.
	CACerts string
	// Cmd are the default arguments after the entrypoint.
	Cmd []string
	// Labels are the image config's labels (org.opencontainers.image.*).
	Labels map[string]string
}

// Descriptor points at a blob.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *Platform         `json:"platform,omitempty"`
}

// Platform is an image's operating system and architecture.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// Index is the layout's index.json.
type Index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []Descriptor `json:"manifests"`
}

// Manifest is an image manifest.
type Manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        Descriptor   `json:"config"`
	Layers        []Descriptor `json:"layers"`
}

// Config is the image config: what runs and how.
type Config struct {
	Created      time.Time     `json:"created"`
	Architecture string        `json:"architecture"`
	OS           string        `json:"os"`
	Config       RunConfig     `json:"config"`
	RootFS       RootFS        `json:"rootfs"`
	History      []HistoryItem `json:"history,omitempty"`
}

// RunConfig is the execution part of the image config.
type RunConfig struct {
	User       string            `json:"User,omitempty"`
	Env        []string          `json:"Env,omitempty"`
	Entrypoint []string          `json:"Entrypoint,omitempty"`
	Cmd        []string          `json:"Cmd,omitempty"`
	WorkingDir string            `json:"WorkingDir,omitempty"`
	Labels     map[string]string `json:"Labels,omitempty"`
}

// RootFS lists the layers' uncompressed digests.
type RootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

// HistoryItem is one step of the image's history.
type HistoryItem struct {
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by,omitempty"`
}

// Write writes the image described by s to w as an OCI image layout in a
// tar archive (with a docker-archive manifest.json beside it, so older
// `docker load` reads it too).
func Write(w io.Writer, s Spec) error {
	if s.Binary == "" || !strings.HasPrefix(s.Path, "/") || s.Ref == "" {
		return errors.New("writing the image: need a binary, an absolute path in the image and a reference")
	}
	if s.Arch == "" {
		return errors.New("writing the image: need the binary's architecture")
	}
	if s.OS == "" {
		s.OS = "linux"
	}
	layer, diffID, err := buildLayer(s)
	if err != nil {
		return fmt.Errorf("writing the image: %w", err)
	}
	cfg := Config{
		Created: epoch, Architecture: s.Arch, OS: s.OS,
		Config: RunConfig{
			User:       fmt.Sprintf("%d:%d", nonroot, nonroot),
			Env:        []string{"PATH=/", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
			Entrypoint: []string{s.Path},
			Cmd:        s.Cmd,
			WorkingDir: "/tmp",
			Labels:     s.Labels,
		},
		RootFS:  RootFS{Type: "layers", DiffIDs: []string{diffID}},
		History: []HistoryItem{{Created: epoch, CreatedBy: "relia ociimage: " + path.Base(s.Path)}},
	}
	if s.CACerts == "" {
		cfg.Config.Env = cfg.Config.Env[:1]
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("writing the image: %w", err)
	}
	layerDesc := Descriptor{MediaType: MediaTypeLayer, Digest: digest(layer), Size: int64(len(layer))}
	cfgDesc := Descriptor{MediaType: MediaTypeConfig, Digest: digest(cfgJSON), Size: int64(len(cfgJSON))}
	man, err := json.Marshal(Manifest{SchemaVersion: 2, MediaType: MediaTypeManifest, Config: cfgDesc, Layers: []Descriptor{layerDesc}})
	if err != nil {
		return fmt.Errorf("writing the image: %w", err)
	}
	tag := s.Ref[strings.LastIndex(s.Ref, ":")+1:]
	if strings.Contains(tag, "/") || !strings.Contains(s.Ref, ":") {
		tag = "latest"
	}
	index, err := json.Marshal(Index{SchemaVersion: 2, MediaType: MediaTypeIndex, Manifests: []Descriptor{{
		MediaType: MediaTypeManifest, Digest: digest(man), Size: int64(len(man)),
		Platform: &Platform{Architecture: s.Arch, OS: s.OS},
		Annotations: map[string]string{
			"org.opencontainers.image.ref.name": tag,
			"io.containerd.image.name":          s.Ref,
		},
	}}})
	if err != nil {
		return fmt.Errorf("writing the image: %w", err)
	}
	docker, err := json.Marshal([]map[string]any{{
		"Config": blobPath(cfgDesc.Digest), "RepoTags": []string{s.Ref}, "Layers": []string{blobPath(layerDesc.Digest)},
	}})
	if err != nil {
		return fmt.Errorf("writing the image: %w", err)
	}
	tw := tar.NewWriter(w)
	files := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{"manifest.json", docker},
		{blobPath(cfgDesc.Digest), cfgJSON},
		{blobPath(layerDesc.Digest), layer},
		{blobPath(digest(man)), man},
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("writing the image: %w", err)
		}
	}
	for _, f := range files {
		if err := writeFile(tw, f.name, f.data, 0o644); err != nil {
			return fmt.Errorf("writing the image: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing the image: %w", err)
	}
	return nil
}

// buildLayer returns the gzipped layer and the digest of its tar.
func buildLayer(s Spec) ([]byte, string, error) {
	bin, err := os.ReadFile(s.Binary)
	if err != nil {
		return nil, "", err
	}
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	dirs := []struct {
		name string
		mode int64
	}{{"etc/", 0o755}, {"tmp/", 0o1777}}
	if s.CACerts != "" {
		dirs = append(dirs, struct {
			name string
			mode int64
		}{"etc/ssl/", 0o755}, struct {
			name string
			mode int64
		}{"etc/ssl/certs/", 0o755})
	}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return nil, "", err
		}
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonroot, nonroot)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", nonroot)
	if err := writeFile(tw, "etc/passwd", []byte(passwd), 0o644); err != nil {
		return nil, "", err
	}
	if err := writeFile(tw, "etc/group", []byte(group), 0o644); err != nil {
		return nil, "", err
	}
	if s.CACerts != "" {
		pem, err := os.ReadFile(s.CACerts)
		if err != nil {
			return nil, "", err
		}
		if err := writeFile(tw, "etc/ssl/certs/ca-certificates.crt", pem, 0o644); err != nil {
			return nil, "", err
		}
	}
	for _, d := range parents(s.Path) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return nil, "", err
		}
	}
	if err := writeFile(tw, strings.TrimPrefix(s.Path, "/"), bin, 0o755); err != nil {
		return nil, "", err
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, "", err
	}
	zw.ModTime = epoch
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return gz.Bytes(), digest(raw.Bytes()), nil
}

// parents lists the folders above p that are not at the root's top,
// outermost first ("/usr/local/bin/relia": usr/, usr/local/, usr/local/bin/).
func parents(p string) []string {
	var out []string
	dir := strings.Trim(path.Dir(p), "/")
	if dir == "" || dir == "." {
		return nil
	}
	parts := strings.Split(dir, "/")
	for i := range parts {
		out = append(out, strings.Join(parts[:i+1], "/")+"/")
	}
	return out
}

func writeFile(tw *tar.Writer, name string, data []byte, mode int64) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func blobPath(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:") }

// Image is an image read back from its archive, every digest checked.
type Image struct {
	Index    Index
	Manifest Manifest
	Config   Config
	// Layers are the layers' uncompressed tars, in order.
	Layers [][]byte
}

// maxArchive bounds what Read takes in: relia's image is some tens of
// MiB.
const maxArchive = 1 << 30

// Read reads an image archive that Write wrote (an OCI image layout in a
// tar with one image) and checks the digests and sizes of the manifest,
// the config and every layer, and the layers' diff IDs.
func Read(file string) (*Image, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("reading the image: %w", err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(io.LimitReader(f, maxArchive))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the image %s: %w", file, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("reading the image %s: %w", file, err)
		}
		files[path.Clean(h.Name)] = data
	}
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		return nil, fmt.Errorf("reading the image %s: no OCI layout version 1.0.0", file)
	}
	img := &Image{}
	if err := json.Unmarshal(files["index.json"], &img.Index); err != nil {
		return nil, fmt.Errorf("reading the image %s: index.json: %w", file, err)
	}
	if len(img.Index.Manifests) != 1 {
		return nil, fmt.Errorf("reading the image %s: %d manifests in the index, want 1", file, len(img.Index.Manifests))
	}
	blob := func(d Descriptor, mediaType string) ([]byte, error) {
		data, ok := files[blobPath(d.Digest)]
		switch {
		case d.MediaType != mediaType:
			return nil, fmt.Errorf("blob %s: media type %q, want %q", d.Digest, d.MediaType, mediaType)
		case !ok:
			return nil, fmt.Errorf("blob %s: missing", d.Digest)
		case digest(data) != d.Digest || int64(len(data)) != d.Size:
			return nil, fmt.Errorf("blob %s: digest or size does not match its content", d.Digest)
		}
		return data, nil
	}
	man, err := blob(img.Index.Manifests[0], MediaTypeManifest)
	if err != nil {
		return nil, fmt.Errorf("reading the image %s: %w", file, err)
	}
	if err := json.Unmarshal(man, &img.Manifest); err != nil {
		return nil, fmt.Errorf("reading the image %s: manifest: %w", file, err)
	}
	cfg, err := blob(img.Manifest.Config, MediaTypeConfig)
	if err != nil {
		return nil, fmt.Errorf("reading the image %s: %w", file, err)
	}
	if err := json.Unmarshal(cfg, &img.Config); err != nil {
		return nil, fmt.Errorf("reading the image %s: config: %w", file, err)
	}
	if len(img.Config.RootFS.DiffIDs) != len(img.Manifest.Layers) {
		return nil, fmt.Errorf("reading the image %s: %d layers but %d diff IDs", file, len(img.Manifest.Layers), len(img.Config.RootFS.DiffIDs))
	}
	for i, d := range img.Manifest.Layers {
		gz, err := blob(d, MediaTypeLayer)
		if err != nil {
			return nil, fmt.Errorf("reading the image %s: %w", file, err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			return nil, fmt.Errorf("reading the image %s: layer %d: %w", file, i, err)
		}
		raw, err := io.ReadAll(io.LimitReader(zr, maxArchive))
		if err != nil {
			return nil, fmt.Errorf("reading the image %s: layer %d: %w", file, i, err)
		}
		if digest(raw) != img.Config.RootFS.DiffIDs[i] {
			return nil, fmt.Errorf("reading the image %s: layer %d does not match its diff ID", file, i)
		}
		img.Layers = append(img.Layers, raw)
	}
	return img, nil
}

// Unpack lays the image's layers out in dir, in order, as a container
// runtime would (without whiteouts: Write makes none). Entries that would
// land outside dir are refused.
func (img *Image) Unpack(dir string) error {
	for i, layer := range img.Layers {
		tr := tar.NewReader(bytes.NewReader(layer))
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("unpacking layer %d: %w", i, err)
			}
			name := path.Clean("/" + h.Name)
			dst := filepath.Join(dir, filepath.FromSlash(name))
			switch h.Typeflag {
			case tar.TypeDir:
				if err := os.MkdirAll(dst, os.FileMode(h.Mode).Perm()|0o700); err != nil {
					return fmt.Errorf("unpacking layer %d: %w", i, err)
				}
			case tar.TypeReg:
				if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
					return fmt.Errorf("unpacking layer %d: %w", i, err)
				}
				data, err := io.ReadAll(tr)
				if err != nil {
					return fmt.Errorf("unpacking layer %d: %w", i, err)
				}
				if err := os.WriteFile(dst, data, os.FileMode(h.Mode).Perm()); err != nil {
					return fmt.Errorf("unpacking layer %d: %w", i, err)
				}
			default:
				return fmt.Errorf("unpacking layer %d: %s: entry type %c is not supported", i, h.Name, h.Typeflag)
			}
		}
	}
	return nil
}
