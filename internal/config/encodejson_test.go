package config

import (
	"encoding/json"
	"testing"
	"time"
)

// MarshalJSON writes what Marshal writes, as JSON that is valid, keeps
// the field order and reads back through Decode.
func TestMarshalJSONReadsBack(t *testing.T) {
	type inner struct {
		Limit Size              `yaml:"limit"`
		Share Ratio             `yaml:"share"`
		Tags  map[string]string `yaml:"tags"`
	}
	type body struct {
		Name    string        `yaml:"name"`
		Wait    time.Duration `yaml:"wait"`
		Count   int           `yaml:"count"`
		On      bool          `yaml:"on"`
		Bounds  []float64     `yaml:"bounds"`
		Inner   *inner        `yaml:"inner"`
		Skipped string        `yaml:"skipped"`
	}
	in := body{Name: `a "<b>" & c`, Wait: 90 * time.Second, Count: 3, On: true, Bounds: []float64{0.005, 2.5, 1e6},
		Inner: &inner{Limit: 16 << 10, Share: 0.5, Tags: map[string]string{"Z": "on", "A": "no"}}}
	got, err := MarshalJSON("Test", in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"Test","version":"relia/v1","name":"a \"<b>\" & c","wait":"1m30s","count":3,"on":true,` +
		`"bounds":[0.005,2.5,1e+06],"inner":{"limit":"16KiB","share":0.5,"tags":{"A":"no","Z":"on"}}}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if !json.Valid(got) {
		t.Fatal("not JSON")
	}
	docs, err := Parse("in.json", got)
	if err != nil {
		t.Fatal(err)
	}
	var back body
	if err := docs[0].Decode(&back); err != nil {
		t.Fatal(err)
	}
	if back.Name != in.Name || back.Wait != in.Wait || back.Inner.Limit != in.Inner.Limit || back.Inner.Tags["Z"] != "on" || len(back.Bounds) != 3 {
		t.Errorf("read back as %+v", back)
	}
}
