// Package k8s holds the Kubernetes manifests that run relia load as an
// Indexed Job; its test checks them without a cluster.
package k8s

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/relia-dev/relia/load"
)

// The fields of the Kubernetes and kustomize types the manifests use,
// decoded strictly: a misspelt or misplaced field is an error here rather
// than a field the API server drops.
type (
	kustomization struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Labels     []struct {
			Pairs map[string]string `yaml:"pairs"`
		} `yaml:"labels"`
		Resources          []string `yaml:"resources"`
		ConfigMapGenerator []struct {
			Name  string   `yaml:"name"`
			Files []string `yaml:"files"`
			Envs  []string `yaml:"envs"`
		} `yaml:"configMapGenerator"`
	}
	object struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Spec yaml.Node `yaml:"spec"`
	}
	jobSpec struct {
		CompletionMode       string `yaml:"completionMode"`
		Completions          int    `yaml:"completions"`
		Parallelism          int    `yaml:"parallelism"`
		BackoffLimitPerIndex *int   `yaml:"backoffLimitPerIndex"`
		Template             struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	}
	podSpec struct {
		RestartPolicy   string `yaml:"restartPolicy"`
		SecurityContext struct {
			RunAsNonRoot bool `yaml:"runAsNonRoot"`
			RunAsUser    int  `yaml:"runAsUser"`
			RunAsGroup   int  `yaml:"runAsGroup"`
			FSGroup      int  `yaml:"fsGroup"`
		} `yaml:"securityContext"`
		Containers []container `yaml:"containers"`
		Volumes    []struct {
			Name      string `yaml:"name"`
			ConfigMap *struct {
				Name string `yaml:"name"`
			} `yaml:"configMap"`
			PersistentVolumeClaim *struct {
				ClaimName string `yaml:"claimName"`
			} `yaml:"persistentVolumeClaim"`
		} `yaml:"volumes"`
	}
	container struct {
		Name  string   `yaml:"name"`
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Env   []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				ConfigMapKeyRef struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"configMapKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	}
	pvcSpec struct {
		AccessModes []string `yaml:"accessModes"`
		Resources   struct {
			Requests map[string]string `yaml:"requests"`
		} `yaml:"resources"`
	}
)

func strict(t *testing.T, name string, data []byte, v any) {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func decodeNode(t *testing.T, name string, n *yaml.Node, v any) {
	t.Helper()
	var b bytes.Buffer
	if err := yaml.NewEncoder(&b).Encode(n); err != nil {
		t.Fatal(err)
	}
	strict(t, name, b.Bytes(), v)
}

// objects reads the documents of a manifest file.
func objects(t *testing.T, file string) []object {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var out []object
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		out = append(out, o)
	}
}

// TestKustomization: every file the kustomization names exists, the
// ConfigMaps it generates hold what the Job mounts and reads (the
// scenario with its data file, a START_AT in the future), and the Job's
// and the merge pod's fields are the Kubernetes API's.
func TestKustomization(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	strict(t, "kustomization.yaml", data, &k)
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("kustomization: %s %s", k.APIVersion, k.Kind)
	}
	var files []string
	files = append(files, k.Resources...)
	generated := map[string][]string{}
	for _, g := range k.ConfigMapGenerator {
		for _, f := range append(slices.Clone(g.Files), g.Envs...) {
			files = append(files, f)
			generated[g.Name] = append(generated[g.Name], f)
		}
	}
	for _, f := range files {
		if filepath.IsAbs(f) || strings.HasPrefix(filepath.Clean(f), "..") {
			t.Errorf("%s: kustomize loads files under its own folder only", f)
		}
		if _, err := os.Stat(f); err != nil {
			t.Errorf("the kustomization names %s: %v", f, err)
		}
	}

	// The scenario loads as relia load would load it, with its data file
	// beside it in the same ConfigMap.
	scs, err := load.ReadScenarios("scenario.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := scs[0].Build(); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(generated["relia-scenario"], scs[0].Spec.Data.File) {
		t.Errorf("the scenario reads %s, which is not in the relia-scenario ConfigMap %v", scs[0].Spec.Data.File, generated["relia-scenario"])
	}
	env, err := os.ReadFile("start-at.env")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^START_AT=(\S+)$`).FindSubmatch(env)
	if m == nil {
		t.Fatal("start-at.env sets no START_AT")
	}
	if at, err := time.Parse(time.RFC3339, string(m[1])); err != nil {
		t.Errorf("START_AT %s: %v", m[1], err)
	} else if !at.After(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("START_AT %s is older than this layout; relia load refuses a time in the past", m[1])
	}

	var job jobSpec
	var pvcs []string
	for _, o := range objects(t, "load-indexed-job.yaml") {
		switch o.Kind {
		case "Job":
			if o.APIVersion != "batch/v1" {
				t.Errorf("Job: apiVersion %s", o.APIVersion)
			}
			decodeNode(t, "Job spec", &o.Spec, &job)
		case "PersistentVolumeClaim":
			var p pvcSpec
			decodeNode(t, "PersistentVolumeClaim spec", &o.Spec, &p)
			pvcs = append(pvcs, o.Metadata.Name)
		default:
			t.Errorf("unexpected %s", o.Kind)
		}
	}
	if job.CompletionMode != "Indexed" || job.Completions < 1 || job.BackoffLimitPerIndex == nil || *job.BackoffLimitPerIndex != 0 {
		t.Errorf("Job: %+v; want an Indexed Job that retries no index", job)
	}
	pod := job.Template.Spec
	c := pod.Containers[0]
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"load /scenario/scenario.yaml", "--segment=$(JOB_COMPLETION_INDEX)/$(SEGMENTS)", "--start-at=$(START_AT)", "--out=/results/segment-$(JOB_COMPLETION_INDEX).json"} {
		if !strings.Contains(args, want) {
			t.Errorf("Job args %q lack %q", args, want)
		}
	}
	envs := map[string]bool{}
	for _, e := range c.Env {
		envs[e.Name] = true
		if e.Name == "SEGMENTS" && e.Value != strconv.Itoa(job.Completions) {
			t.Errorf("SEGMENTS %s differs from completions %d", e.Value, job.Completions)
		}
		if e.ValueFrom != nil {
			if _, ok := generated[e.ValueFrom.ConfigMapKeyRef.Name]; !ok {
				t.Errorf("env %s reads ConfigMap %s, which the kustomization does not generate", e.Name, e.ValueFrom.ConfigMapKeyRef.Name)
			}
		}
	}
	if !envs["START_AT"] || !envs["SEGMENTS"] {
		t.Errorf("Job env %v lacks START_AT or SEGMENTS", envs)
	}
	for _, v := range pod.Volumes {
		switch {
		case v.ConfigMap != nil:
			if _, ok := generated[v.ConfigMap.Name]; !ok {
				t.Errorf("volume %s mounts ConfigMap %s, which the kustomization does not generate", v.Name, v.ConfigMap.Name)
			}
		case v.PersistentVolumeClaim != nil:
			if !slices.Contains(pvcs, v.PersistentVolumeClaim.ClaimName) {
				t.Errorf("volume %s claims %s, which no manifest defines", v.Name, v.PersistentVolumeClaim.ClaimName)
			}
		}
	}

	merge := objects(t, "merge-pod.yaml")
	if len(merge) != 1 || merge[0].Kind != "Pod" {
		t.Fatalf("merge-pod.yaml: %+v", merge)
	}
	var mp podSpec
	decodeNode(t, "merge Pod spec", &merge[0].Spec, &mp)
	segments := 0
	for _, a := range mp.Containers[0].Args {
		if strings.HasPrefix(a, "/results/segment-") {
			segments++
		}
	}
	if segments != job.Completions {
		t.Errorf("the merge reads %d segments, the Job writes %d", segments, job.Completions)
	}
}
