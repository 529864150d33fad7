package fault

import "fmt"

// MaxNameLength bounds the name of a proxy, a toxic or a process fault.
const MaxNameLength = 128

// checkName refuses a name that could not sit in a URL path segment, a
// log line or a file name as it is: names are 1 to MaxNameLength letters,
// digits, '-', '_' and '.', starting with a letter or a digit (so neither
// "." nor ".." nor "../etc"). kind says what is named ("proxy"), where
// which one (" at proxy 3") or nothing.
func checkName(kind, name, where string) error {
	if name == "" {
		return ErrMissingField.detail("name%s", where)
	}
	if len(name) > MaxNameLength {
		return ErrBadRequestBody.detail("%s name %s is %d bytes long, at most %d%s", kind, quoteName(name), len(name), MaxNameLength, where)
	}
	for i, c := range []byte(name) {
		letterOrDigit := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !letterOrDigit && (i == 0 || c != '-' && c != '_' && c != '.') {
			return ErrBadRequestBody.detail("%s name %s must start with a letter or digit and hold only letters, digits, '-', '_' and '.'%s", kind, quoteName(name), where)
		}
	}
	return nil
}

// quoteName quotes a name taken from a request for a message, shortened
// when it is long: the name may be anything a client sent.
func quoteName(name string) string {
	if len(name) > maxShown {
		return fmt.Sprintf("%q...(%d bytes)", name[:maxShown], len(name))
	}
	return fmt.Sprintf("%q", name)
}
