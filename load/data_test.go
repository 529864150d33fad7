package load

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestDataSequentialUsesEveryRowOnce(t *testing.T) {
	d, err := ReadData(strings.NewReader("email,plan\na@x,gold\nb@x,free\nc@x,gold\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 3 || strings.Join(d.Columns, ",") != "email,plan" {
		t.Fatalf("columns %v rows %d", d.Columns, d.Len())
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for range 100 {
				row := d.Next(nil)
				mu.Lock()
				seen[row[0]]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, k := range []string{"a@x", "b@x", "c@x"} {
		if seen[k] != 100 {
			t.Fatalf("row %s used %d times of 300, want 100: %v", k, seen[k], seen)
		}
	}
}

func TestDataRandom(t *testing.T) {
	d, err := ReadData(strings.NewReader("id\n1\n2\n"), DataRandom)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	seen := map[string]int{}
	for range 1000 {
		seen[d.Next(r)[0]]++
	}
	if seen["1"] < 400 || seen["2"] < 400 {
		t.Fatalf("random rows skewed: %v", seen)
	}
}

func TestDataErrors(t *testing.T) {
	for src, msg := range map[string]string{
		"":                "empty",
		"id\n":            "no rows",
		"id,id\n1,2\n":    `column "id" appears twice`,
		"my id\n1\n":      `column name "my id"`,
		"a,b\n1,2\n3\n":   "line 3",
		"a\n\"unclosed\n": "line 2",
	} {
		_, err := ReadData(strings.NewReader(src), "")
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ReadData(%q) = %v, want error containing %q", src, err, msg)
		}
	}
	if _, err := ReadData(strings.NewReader("a\n1\n"), "shuffled"); err == nil {
		t.Error("unknown order accepted")
	}
	path := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(path, []byte("id\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadData(path, ""); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadData error does not name the file: %v", err)
	}
}

func FuzzReadData(f *testing.F) {
	for _, s := range []string{"id\n1\n", "a,b\n1,2\n", "", "a\n\"x", "a,a\n1,1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		d, err := ReadData(strings.NewReader(src), "")
		if err != nil {
			return
		}
		if d.Len() == 0 || len(d.Columns) == 0 {
			t.Fatal("accepted data without rows or columns")
		}
		_ = d.Next(nil)
	})
}
