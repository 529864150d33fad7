package fault

import (
	"fmt"
	"net/http"
)

// APIError is an error of the control API. It renders as Toxiproxy renders
// its errors, {"error": "...", "status": N}, so Toxiproxy's clients report
// relia's errors unchanged.
type APIError struct {
	Message string `json:"error"`
	Status  int    `json:"status"`
}

func (e *APIError) Error() string { return e.Message }

// Is makes errors.Is match on the status and the message prefix of a
// sentinel, so a detailed error still matches the sentinel it came from.
func (e *APIError) Is(target error) bool {
	t, ok := target.(*APIError)
	if !ok || t.Status != e.Status {
		return false
	}
	return len(e.Message) >= len(t.Message) && e.Message[:len(t.Message)] == t.Message
}

// detail returns a copy of e whose message carries a detail after a colon,
// the way Toxiproxy joins its messages ("bad request body: ...").
func (e *APIError) detail(format string, args ...any) *APIError {
	return &APIError{Message: e.Message + ": " + fmt.Sprintf(format, args...), Status: e.Status}
}

// The sentinels carry Toxiproxy's messages and statuses.
var (
	ErrBadRequestBody     = &APIError{"bad request body", http.StatusBadRequest}
	ErrMissingField       = &APIError{"missing required field", http.StatusBadRequest}
	ErrProxyNotFound      = &APIError{"proxy not found", http.StatusNotFound}
	ErrProxyAlreadyExists = &APIError{"proxy already exists", http.StatusConflict}
	ErrInvalidStream      = &APIError{"stream was invalid, can be either upstream or downstream", http.StatusBadRequest}
	ErrInvalidToxicType   = &APIError{"invalid toxic type", http.StatusBadRequest}
	ErrToxicAlreadyExists = &APIError{"toxic already exists", http.StatusConflict}
	ErrToxicNotFound      = &APIError{"toxic not found", http.StatusNotFound}
	// ErrUnauthorized is relia's: the API needs a bearer token on this address.
	ErrUnauthorized = &APIError{"missing or wrong bearer token", http.StatusUnauthorized}
	// ErrBrowser answers a browser's request, which Toxiproxy refuses so
	// that a web page cannot drive the API through its visitor's browser.
	ErrBrowser = &APIError{"User agent not allowed", http.StatusForbidden}
	// ErrNoEndpoint and ErrMethodNotAllowed answer what no route serves.
	ErrNoEndpoint       = &APIError{"no such endpoint", http.StatusNotFound}
	ErrMethodNotAllowed = &APIError{"method not allowed", http.StatusMethodNotAllowed}
)
