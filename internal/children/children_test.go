package children

import (
	"sync"
	"testing"
)

func TestGetMakesEachChildOnce(t *testing.T) {
	t.Parallel()
	var m Map[string, *int]
	made := map[string]int{}
	mk := func(k string) func() *int {
		return func() *int {
			made[k]++
			n := len(made)
			return &n
		}
	}
	a := m.Get("a", mk("a"))
	b := m.Get("b", mk("b"))
	if a == b {
		t.Fatal("two keys share a child")
	}
	for _, k := range []string{"a", "a", "b", "a", "b", "b"} {
		want := a
		if k == "b" {
			want = b
		}
		if got := m.Get(k, mk(k)); got != want {
			t.Fatalf("Get(%q) returned another child", k)
		}
	}
	if made["a"] != 1 || made["b"] != 1 {
		t.Fatalf("children made %v, want each once", made)
	}
}

func TestGetConcurrentCallersShareOneChild(t *testing.T) {
	t.Parallel()
	var m Map[int, *int]
	const n = 8
	got := make([]*int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			for k := range 100 {
				v := m.Get(k%3, func() *int { return new(int) })
				if k == 99 {
					got[i] = v
				}
			}
		})
	}
	wg.Wait()
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("caller %d got another child for the same key", i)
		}
	}
}

func TestGetDoesNotAllocateOnAHit(t *testing.T) {
	var m Map[[2]string, *int]
	one, two := new(int), new(int)
	m.Get([2]string{"r", "200"}, func() *int { return one })
	m.Get([2]string{"r", "500"}, func() *int { return two })
	n := testing.AllocsPerRun(100, func() {
		if m.Get([2]string{"r", "200"}, func() *int { return nil }) != one ||
			m.Get([2]string{"r", "500"}, func() *int { return nil }) != two {
			t.Fatal("wrong child")
		}
	})
	if n > 0 {
		t.Fatalf("Get allocates %v times", n)
	}
}
