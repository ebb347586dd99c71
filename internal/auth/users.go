package auth

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Users are the people who may log in with a password (HTTP basic auth),
// read from an htpasswd file of bcrypt hashes: `htpasswd -nB alice` or
// `skytrail passwd alice` writes a line.
type Users struct {
	hashes map[string][]byte
	// tenants are the tenants each user may read (Identity.Tenants).
	tenants map[string][]string
	// dummy is compared against for unknown users, so a wrong name takes
	// as long as a wrong password and names cannot be probed.
	dummy []byte

	// A browser sends the password with every request, and the UI makes
	// several a page: bcrypt at cost 10 takes 50-80 ms of a core (80 ms
	// measured on the 2-core CI machine, busy), so a
	// checked (user, password, hash) is remembered, as a salted SHA-256.
	mu    sync.Mutex
	good  map[[32]byte]bool
	salt  [32]byte
	slots chan struct{} // bounds concurrent bcrypt work (see LoadUsers)
}

// maxRemembered bounds the remembered logins; past it the memory starts over.
const maxRemembered = 4096

// LoadUsers reads an htpasswd file: lines user:hash, hashes bcrypt ($2a$,
// $2b$ or $2y$), each optionally followed by the user's tenants as
// tenant=NAME[,NAME...] after a space (htpasswd keeps such lines as they
// are); # starts a comment line.
func LoadUsers(file string) (*Users, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read users file: %w", err)
	}
	defer f.Close()
	u := &Users{hashes: map[string][]byte{}, tenants: map[string][]string{}, good: map[[32]byte]bool{}}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("users file %s line %d: want user:bcrypt-hash", file, n)
		}
		fields := strings.Fields(rest)
		hash := ""
		if len(fields) > 0 {
			hash = fields[0]
		}
		for _, f := range fields[min(1, len(fields)):] {
			v, ok := strings.CutPrefix(f, "tenant=")
			if !ok || v == "" {
				return nil, fmt.Errorf("users file %s line %d (%s): %q is not tenant=NAME[,NAME...]", file, n, name, f)
			}
			if u.tenants[name], err = parseTenants(u.tenants[name], v); err != nil {
				return nil, fmt.Errorf("users file %s line %d (%s): %w", file, n, name, err)
			}
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("users file %s line %d (%s): not a bcrypt hash (%v); make one with htpasswd -nB %s or skytrail passwd %s", file, n, name, err, name, name)
		}
		if _, dup := u.hashes[name]; dup {
			return nil, fmt.Errorf("users file %s line %d: user %s appears twice", file, n, name)
		}
		u.hashes[name] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read users file %s: %w", file, err)
	}
	if len(u.hashes) == 0 {
		return nil, fmt.Errorf("users file %s names no user", file)
	}
	u.dummy, _ = bcrypt.GenerateFromPassword([]byte("no such user"), bcrypt.DefaultCost)
	_, _ = rand.Read(u.salt[:])
	// Half the cores at most: wrong passwords sent in a flood wait their
	// turn instead of taking the whole machine from ingest.
	u.slots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))
	return u, nil
}

// Len is how many users there are.
func (u *Users) Len() int { return len(u.hashes) }

// Tenants are the tenants user may read (empty: the default tenant only).
func (u *Users) Tenants(user string) []string { return u.tenants[user] }

// Check tells whether password is user's.
func (u *Users) Check(user, password string) bool {
	hash, known := u.hashes[user]
	if !known {
		hash = u.dummy
	}
	h := sha256.New()
	h.Write(u.salt[:])
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write([]byte(password))
	h.Write([]byte{0})
	h.Write(hash)
	var key [32]byte
	h.Sum(key[:0])
	u.mu.Lock()
	remembered := u.good[key]
	u.mu.Unlock()
	if remembered {
		return known
	}
	u.slots <- struct{}{}
	err := bcrypt.CompareHashAndPassword(hash, []byte(password))
	<-u.slots
	if err != nil || !known {
		return false
	}
	u.mu.Lock()
	if len(u.good) >= maxRemembered {
		clear(u.good)
	}
	u.good[key] = true
	u.mu.Unlock()
	return true
}

// HashPassword is the htpasswd line for user with password, for
// `skytrail passwd`.
func HashPassword(user, password string) (string, error) {
	if user == "" || strings.ContainsAny(user, ":\n") {
		return "", fmt.Errorf("user name %q: want a non-empty name without ':' or newlines", user)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hash the password: %w", err)
	}
	return user + ":" + string(hash), nil
}
