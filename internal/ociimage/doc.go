// Package ociimage assembles the OCI image of relia without a container
// daemon: one layer holding a static binary (and the few files a program
// on a scratch base needs: /etc/passwd and /etc/group with a nonroot
// user, /tmp, optionally CA certificates), an image config that runs the
// binary as that user, and the OCI image layout around them, written as a
// tar archive that `docker load`, `podman load`, `skopeo copy
// oci-archive:...` and `crane push` read. Every timestamp is fixed, so
// the same binary gives the same image, byte for byte.
//
//	err := ociimage.Write(f, ociimage.Spec{
//		Binary: "bin/relia-linux-amd64", Path: "/relia",
//		Ref:    "ghcr.io/relia-dev/relia:latest",
//		Arch:   "amd64",
//	})
//
// Read and Unpack go the other way, for tests and for users without a
// container tool: they check every digest and lay the root filesystem out
// in a folder.
//
//	img, err := ociimage.Read("bin/relia-image.tar")
//	err = img.Unpack("rootfs")
//	// rootfs/relia is img.Config.Config.Entrypoint[0]
package ociimage
