package callstore

import (
	"hash/fnv"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// Segments written by earlier relia keep their Bloom filters: the hash
// computed in place must be hash/fnv's 64-bit FNV-1a, bit for bit.
func TestBloomHashIsFNV1a(t *testing.T) {
	for _, s := range []string{"", "a", "req-42", "0123456789abcdef0123456789abcdef", "ünïcode\x00bytes"} {
		h := fnv.New64a()
		h.Write([]byte(s))
		v := h.Sum64()
		a, b := bloomHash(s)
		if a != uint32(v) || b != uint32(v>>32)|1 {
			t.Errorf("bloomHash(%q) = %x, %x; want %x, %x", s, a, b, uint32(v), uint32(v>>32)|1)
		}
	}
}

// rollupBatchByCall is how rollups were made before rollupBatch summed
// minutes into hours: every call added to its minute's row and its
// hour's.
func rollupBatchByCall(recs []Record) map[rollupKey]*Aggregate {
	out := map[rollupKey]*Aggregate{}
	for i := range recs {
		r := &recs[i]
		k := Key{Route: r.Route, API: r.API, Tenant: r.Tenant, KeyID: r.KeyID, Model: r.Model}
		for _, res := range []time.Duration{Minute, Hour} {
			b := r.Time.Truncate(res)
			rk := rollupKey{res, b.Unix(), k}
			if out[rk] == nil {
				out[rk] = &Aggregate{Time: b, Key: k}
			}
			out[rk].add(r)
		}
	}
	return out
}

// The hour rows summed from the minute rows hold what adding every call
// to its hour gives, for calls of many groups spread over two hours and
// out of order.
func TestRollupBatchMatchesRollupsByCall(t *testing.T) {
	recs := benchRecords(3000, t0.Add(50*time.Minute))
	for i := range recs {
		recs[i].Time = recs[i].Time.Add(time.Duration(i%7) * 3 * time.Minute) // crosses the hour, out of order
		recs[i].Cost = float64(i%5) * 0.25                                    // exact in binary, so sums in any order agree
	}
	want := rollupBatchByCall(recs)
	rows := rollupBatch(recs)
	if len(rows) != len(want) {
		t.Fatalf("%d rollup rows, want %d", len(rows), len(want))
	}
	for _, r := range rows {
		w := want[rollupKey{r.resolution, r.bucket.Unix(), r.Key}]
		if w == nil {
			t.Fatalf("unexpected row %s %s %+v", r.resolution, r.bucket, r.Key)
		}
		got, wantHist := r.Aggregate, w.Latency
		gotHist := got.Latency
		got.Latency, w.Latency = wantHist, wantHist // compared below, by content
		if !reflect.DeepEqual(got, *w) {
			t.Errorf("row %s %s %+v:\n%+v\nwant\n%+v", r.resolution, r.bucket, r.Key, got, *w)
		}
		gb, _ := gotHist.MarshalBinary()
		wb, _ := wantHist.MarshalBinary()
		if string(gb) != string(wb) {
			t.Errorf("row %s %s %+v: latency histogram differs", r.resolution, r.bucket, r.Key)
		}
	}
}

// A batch the Writer hands to a DB is stored as its frames are, without
// being decoded into copies and encoded again: the calls read back are
// the calls recorded, and the stored bytes are those DB.Write stores
// for the same calls. Steps and headers of varying counts across
// batches check that the writer's reused scratch leaks nothing from one
// batch into the next.
func TestWriterStoresItsFramesAsTheyAre(t *testing.T) {
	ctx := testContext(t)
	const batch = 100
	recs := benchRecords(5*batch, t0)
	for i := range recs {
		r := &recs[i]
		switch {
		case i%7 == 0:
			r.Steps = []Step{
				{Kind: StepAttempt, Target: "a", Status: 503, Outcome: "status", Reason: "upstream_5xx", Latency: time.Millisecond},
				{Kind: StepFallback, Status: 200, Outcome: "ok", Latency: time.Microsecond},
			}
		case i%3 == 0:
			r.Steps = []Step{{Kind: StepAttempt, Target: "b", Status: 200, Outcome: "ok"}}
		}
		if i%(batch+1) == 0 {
			r.RequestHeaders = []Header{{"Content-Type", "text/plain"}, {"Accept", "*/*"}}
			r.ResponseBody = "ok"
		}
	}
	viaWriter := openStore(t, filepath.Join(t.TempDir(), "w.db"), nil)
	direct := openStore(t, filepath.Join(t.TempDir(), "d.db"), nil)
	w, err := NewWriter(viaWriter, WriterOptions{BatchSize: batch})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		w.Record(&recs[i])
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for at := 0; at < len(recs); at += batch {
		if err := direct.Write(ctx, recs[at:at+batch]); err != nil {
			t.Fatal(err)
		}
	}
	blobs := func(s *DB) []string {
		rows, err := s.db.QueryContext(ctx, "SELECT records FROM call_segments ORDER BY first_seq")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				t.Fatal(err)
			}
			out = append(out, string(b))
		}
		return out
	}
	if got, want := blobs(viaWriter), blobs(direct); !reflect.DeepEqual(got, want) {
		t.Errorf("the Writer's %d segments differ from DB.Write's %d for the same calls", len(got), len(want))
	}
	got, err := viaWriter.Calls(ctx, Query{Limit: len(recs), From: t0, To: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("read back %d calls, want %d", len(got), len(recs))
	}
	for i, g := range got {
		want := recs[len(recs)-1-i]
		want.Seq = g.Seq
		want.Time = want.Time.UTC()
		if !reflect.DeepEqual(g, want) {
			t.Fatalf("call %d read back as\n%+v\nwant\n%+v", i, g, want)
		}
	}
}
