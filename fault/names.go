package fault

import "fmt"

// MaxNameLength bounds the name of a proxy, a toxic or a process fault.
const MaxNameLength = 128

// nameError says what is wrong with a name, or nil: names are 1 to
// MaxNameLength letters, digits, '-', '_' and '.', starting with a letter
// or a digit (so neither "." nor ".." nor "../etc"), so that a name sits
// in a URL path segment, a log line or a file name as it is. kind says
// what is named ("proxy").
func nameError(kind, name string) error {
	if name == "" {
		return fmt.Errorf("%s name is empty", kind)
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("%s name %s is %d bytes long, at most %d", kind, quoteName(name), len(name), MaxNameLength)
	}
	for i, c := range []byte(name) {
		letterOrDigit := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !letterOrDigit && (i == 0 || c != '-' && c != '_' && c != '.') {
			return fmt.Errorf("%s name %s must start with a letter or digit and hold only letters, digits, '-', '_' and '.'", kind, quoteName(name))
		}
	}
	return nil
}

// checkName is nameError as the API's error; where says which one
// (" at proxy 3") or nothing.
func checkName(kind, name, where string) error {
	if name == "" {
		return ErrMissingField.detail("name%s", where)
	}
	if err := nameError(kind, name); err != nil {
		return ErrBadRequestBody.detail("%v%s", err, where)
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
