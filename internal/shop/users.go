package shop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// NumUsers is how many users the shop knows: ids 1 to NumUsers.
const NumUsers = 1000

// DemoPassword is every demo user's password.
const DemoPassword = "demo"

// User is a shop customer.
type User struct {
	ID    int    `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
	Tier  string `json:"tier"`
}

var (
	firstNames = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Dennis", "Frances", "Linus", "Radia", "Leslie"}
	tiers      = []string{"basic", "basic", "basic", "plus", "plus", "gold"}
)

func userOf(seed uint64, id int) User {
	k := streamKey(seed, "users")
	name := firstNames[int(unit(k, uint64(2*id))*float64(len(firstNames)))]
	return User{
		ID:    id,
		Name:  fmt.Sprintf("%s %d", name, id),
		Email: fmt.Sprintf("%s.%d@shop.example", strings.ToLower(name), id),
		Tier:  tiers[int(unit(k, uint64(2*id+1))*float64(len(tiers)))],
	}
}

// tokens issues and checks the bearer tokens every service accepts: the
// user id signed with a secret the services share (HMAC-SHA256), so any
// service checks a token without asking the users service.
type tokens struct{ secret []byte }

func newTokens(seed uint64) tokens {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seed)
	s := sha256.Sum256(append([]byte("relia shop token secret "), b[:]...))
	return tokens{secret: s[:]}
}

func (t tokens) issue(userID int) string {
	id := strconv.Itoa(userID)
	return "u" + id + "." + t.sign(id)
}

func (t tokens) sign(id string) string {
	m := hmac.New(sha256.New, t.secret)
	m.Write([]byte(id))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// SessionCookie is the cookie a login sets: the same token as the
// login's answer, for clients that keep cookies rather than headers (a
// browser, a load test's journey).
const SessionCookie = "shop_session"

// user returns the user a request's "Authorization: Bearer" token names,
// or, without one, its session cookie.
func (t tokens) user(r *http.Request) (int, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		c, err := r.Cookie(SessionCookie)
		if err != nil {
			return 0, false
		}
		tok = c.Value
	}
	id, sig, ok := strings.Cut(strings.TrimPrefix(tok, "u"), ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(t.sign(id))) {
		return 0, false
	}
	n, err := strconv.Atoi(id)
	return n, err == nil
}

// loginRequest is the body of POST /login.
type loginRequest struct {
	UserID   int    `json:"userId"`
	Password string `json:"password"`
}

// loginResponse is the answer to a good login.
type loginResponse struct {
	Token  string `json:"token"`
	UserID int    `json:"userId"`
}

// usersHandler serves GET /users/{id} (with a token) and POST /login,
// which answers the token and sets it as the session cookie too.
func usersHandler(seed uint64, tok tokens, p pacer) http.Handler {
	get := newLatency(seed, "users/get", 2*time.Millisecond)
	login := newLatency(seed, "users/login", 6*time.Millisecond)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := tok.user(r); !ok {
			writeJSON(w, http.StatusUnauthorized, reason("bad_token"))
			return
		}
		n, err := strconv.Atoi(r.PathValue("id"))
		if err != nil || n < 1 || n > NumUsers {
			writeJSON(w, http.StatusNotFound, reason("no_such_user"))
			return
		}
		if p.pause(r.Context(), get) != nil {
			return
		}
		writeJSON(w, http.StatusOK, userOf(seed, n))
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		var req loginRequest
		if err := decodeBody(r, &req); err != nil {
			writeJSON(w, http.StatusBadRequest, reason("bad_body"))
			return
		}
		// Hashing a password is the slow part of a real login.
		if p.pause(r.Context(), login) != nil {
			return
		}
		if req.UserID < 1 || req.UserID > NumUsers || req.Password != DemoPassword {
			writeJSON(w, http.StatusUnauthorized, reason("bad_credentials"))
			return
		}
		token := tok.issue(req.UserID)
		http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		writeJSON(w, http.StatusOK, loginResponse{Token: token, UserID: req.UserID})
	})
	return mux
}

// maxBody bounds the request bodies the shop reads.
const maxBody = 64 << 10

// decodeBody reads a JSON body strictly: unknown fields and trailing data
// are errors.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decoding body: %w", err)
	}
	if dec.More() {
		return fmt.Errorf("decoding body: data after the JSON value")
	}
	return nil
}
