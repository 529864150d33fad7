package grpcstatus_test

import (
	"fmt"
	"net/http/httptest"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/relia-dev/relia/internal/grpcstatus"
)

func TestNamesRoundTrip(t *testing.T) {
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		name := grpcstatus.Name(c)
		if len(name) < 2 {
			t.Errorf("code %d: name %q", c, name)
		}
		for _, s := range []string{name, fmt.Sprint(int(c))} {
			if back, ok := grpcstatus.Parse(s); !ok || back != c {
				t.Errorf("Parse(%q) = %v, %v; want %v", s, back, ok, c)
			}
		}
	}
	for _, bad := range []string{"", "17", "-1", "NOPE", "OK!"} {
		if c, ok := grpcstatus.Parse(bad); ok {
			t.Errorf("Parse(%q) = %v, want refused", bad, c)
		}
	}
	if c, ok := grpcstatus.Parse(" resource_exhausted "); !ok || c != codes.ResourceExhausted {
		t.Errorf("lower case with spaces: %v, %v", c, ok)
	}
	if c, ok := grpcstatus.Parse("canceled"); !ok || c != codes.Canceled {
		t.Errorf("CANCELED: %v, %v", c, ok)
	}
	if got := grpcstatus.Name(17); got != "CODE(17)" {
		t.Errorf("Name(17) = %q", got)
	}
}

func TestHTTPStatus(t *testing.T) {
	for c, want := range map[codes.Code]int{
		codes.OK: 200, codes.Canceled: 499, codes.Unknown: 500, codes.InvalidArgument: 400,
		codes.DeadlineExceeded: 504, codes.NotFound: 404, codes.AlreadyExists: 409,
		codes.PermissionDenied: 403, codes.ResourceExhausted: 429, codes.FailedPrecondition: 400,
		codes.Aborted: 409, codes.OutOfRange: 400, codes.Unimplemented: 501, codes.Internal: 500,
		codes.Unavailable: 503, codes.DataLoss: 500, codes.Unauthenticated: 401, 99: 500,
	} {
		if got := grpcstatus.HTTPStatus(c); got != want {
			t.Errorf("HTTPStatus(%s) = %d, want %d", grpcstatus.Name(c), got, want)
		}
	}
}

func TestEncodeMessage(t *testing.T) {
	for in, want := range map[string]string{
		"quota":          "quota",
		"50% off":        "50%25 off",
		"line\nbreak":    "line%0Abreak",
		"caf\u00e9":      "caf%C3%A9",
		"":               "",
		"tab\there~ok!?": "tab%09here~ok!?",
	} {
		if got := grpcstatus.EncodeMessage(in); got != want {
			t.Errorf("EncodeMessage(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWriteTrailersOnly(t *testing.T) {
	w := httptest.NewRecorder()
	pb := int64(-1)
	grpcstatus.WriteTrailersOnly(w, codes.ResourceExhausted, "no quota\n", &pb)
	h := w.Result().Header
	if w.Code != 200 || h.Get("Content-Type") != "application/grpc" || h.Get("Grpc-Status") != "8" ||
		h.Get("Grpc-Message") != "no quota%0A" || h.Get("Grpc-Retry-Pushback-Ms") != "-1" {
		t.Errorf("answer %d %v", w.Code, h)
	}
	w = httptest.NewRecorder()
	grpcstatus.WriteTrailersOnly(w, codes.Unavailable, "", nil)
	if h := w.Result().Header; h.Get("Grpc-Status") != "14" || h.Get("Grpc-Message") != "" || h.Get("Grpc-Retry-Pushback-Ms") != "" {
		t.Errorf("no message, no pushback: %v", h)
	}
}

func Example() {
	c, ok := grpcstatus.Parse("resource_exhausted")
	fmt.Println(c == codes.ResourceExhausted, ok, grpcstatus.Name(c), grpcstatus.HTTPStatus(c))
	fmt.Println(grpcstatus.EncodeMessage("50% off"))
	// Output:
	// true true RESOURCE_EXHAUSTED 429
	// 50%25 off
}

// FuzzParse: whatever a user writes for a status code (the fault API's
// grpc_status) is refused or read as a code of the specification whose
// name reads back as the same code.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"UNAVAILABLE", "8", "canceled", " 14 ", "17", "-1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := grpcstatus.Parse(s)
		if !ok {
			return
		}
		if c > codes.Unauthenticated {
			t.Fatalf("Parse(%q) = %d: past the specification", s, c)
		}
		if back, ok := grpcstatus.Parse(grpcstatus.Name(c)); !ok || back != c {
			t.Fatalf("Parse(%q) = %s, whose name reads back as %v %v", s, grpcstatus.Name(c), back, ok)
		}
	})
}
