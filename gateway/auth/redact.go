package auth

import "strings"

// Redacted replaces the value of a secret header in logs.
const Redacted = "[redacted]"

// sensitiveHeaders are the request and response headers whose values are
// credentials or session state, in canonical form.
var sensitiveHeaders = []string{
	"Authorization",
	"Proxy-Authorization",
	"Cookie",
	"Set-Cookie",
	"X-Api-Key",
	"X-Auth-Token",
	"X-Csrf-Token",
	"X-Amz-Security-Token",
}

// SensitiveHeaders returns the names of the headers never to log:
// credentials (Authorization, API keys, tokens) and cookies. A gateway
// whose API keys come in another header (Authenticator.KeyHeader) must
// keep that one out too.
func SensitiveHeaders() []string { return append([]string(nil), sensitiveHeaders...) }

// IsSensitive reports whether a header, by any case of its name, is one of
// SensitiveHeaders.
func IsSensitive(name string) bool {
	for _, h := range sensitiveHeaders {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// Redact returns value, or Redacted when name is a sensitive header, for
// code that logs headers: access logs, debug dumps, error reports.
func Redact(name, value string) string {
	if IsSensitive(name) {
		return Redacted
	}
	return value
}
