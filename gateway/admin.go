package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/rulesgate/rulesgate/compat"
	"github.com/rulesgate/rulesgate/rules"
)

// adminValidateTimeout bounds the validation of a pushed set, which runs
// the file level of every program.
const adminValidateTimeout = 10 * time.Second

// maxAdminBody bounds a pushed rule set: Auth0 recommended 100 kB of
// rules in all; a set holds rules, hooks, actions and two documents.
const maxAdminBody = 4 << 20

// Admin is the rule store API the admin listener serves: the operations
// of `rulesgate rules`, over JSON, for a bearer of the admin token.
type Admin struct {
	// Store holds the rule set versions.
	Store rules.Store
	// Validate checks a set before a push: every file compiles and has its
	// kind's shape.
	Validate func(context.Context, *rules.Set) error
	// Token is the bearer token; empty refuses every call.
	Token string
}

// adminRoutes adds the rule store API to r, under /admin/rules.
func (g *Gateway) adminRoutes(r *mux.Router, a *Admin) {
	api := r.PathPrefix("/admin/rules").Subrouter()
	api.Use(a.authorize)
	api.Path("/versions").Methods(http.MethodGet).HandlerFunc(a.list)
	api.Path("/versions").Methods(http.MethodPost).HandlerFunc(g.adminPush(a))
	api.Path("/versions/{version:[0-9]+}").Methods(http.MethodGet).HandlerFunc(a.show)
	api.Path("/diff/{a:[0-9]+}/{b:[0-9]+}").Methods(http.MethodGet).HandlerFunc(a.diff)
	api.Path("/active").Methods(http.MethodPut, http.MethodPost).HandlerFunc(g.adminActivate(a))
}

// authorize lets through requests with the admin bearer token, compared
// in constant time, and refuses every request when no token is set.
func (a *Admin) authorize(next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(a.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.Token == "" {
			writeOAuthError(w, http.StatusForbidden, "access_denied", "the admin API is off: no --admin-token-file")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		gotSum := sha256.Sum256([]byte(got))
		// Hashes first, so that the comparison takes the same time
		// whatever the length of what was sent.
		if !ok || subtle.ConstantTimeCompare(gotSum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rulesgate admin"`)
			writeOAuthError(w, http.StatusUnauthorized, "invalid_token", "a valid admin bearer token is required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *Admin) list(w http.ResponseWriter, r *http.Request) {
	list, err := a.Store.List(r.Context())
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *Admin) show(w http.ResponseWriter, r *http.Request) {
	v, _ := strconv.ParseInt(mux.Vars(r)["version"], 10, 64)
	set, err := a.Store.Get(r.Context(), v)
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, reveal(r, set))
}

func (a *Admin) diff(w http.ResponseWriter, r *http.Request) {
	var sets [2]*rules.Set
	for i, name := range []string{"a", "b"} {
		v, _ := strconv.ParseInt(mux.Vars(r)[name], 10, 64)
		set, err := a.Store.Get(r.Context(), v)
		if err != nil {
			storeError(w, err)
			return
		}
		sets[i] = reveal(r, set)
	}
	w.Header().Set("Content-Type", "text/x-diff; charset=utf-8")
	io.WriteString(w, rules.Diff(sets[0], sets[1]))
}

// reveal returns the set with its configuration's values only when the
// call asks for them with ?reveal=true: they are the actions' secrets.
func reveal(r *http.Request, set *rules.Set) *rules.Set {
	if r.URL.Query().Get("reveal") == "true" {
		return set
	}
	return compat.Redacted(set)
}

// adminPush validates and stores a set sent as JSON (rules.Set: files by
// group, documents, note), active at once unless ?activate=false.
func (g *Gateway) adminPush(a *Admin) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var set rules.Set
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&set); err != nil {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "the body is not a rule set: "+err.Error())
			return
		}
		if set.Note == "" {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "a note is required: say why this version")
			return
		}
		// The hashes are the store's to compute, from the sources.
		for group, files := range set.Files {
			for i, f := range files {
				set.Files[group][i] = rules.NewFile(f.Name, []byte(f.Source))
			}
		}
		set.Version = 0
		vctx, cancel := context.WithTimeout(r.Context(), adminValidateTimeout)
		err := a.Validate(vctx, &set)
		cancel()
		if err != nil {
			writeOAuthError(w, http.StatusUnprocessableEntity, "invalid_request", "refused, nothing pushed: "+err.Error())
			return
		}
		activate := r.URL.Query().Get("activate") != "false"
		v, err := a.Store.Push(r.Context(), &set, activate)
		if err != nil {
			storeError(w, err)
			return
		}
		g.logger.Info("rule set pushed", slog.Int64(keyVersion, v), slog.Bool("active", activate), slog.String("note", set.Note))
		writeJSON(w, http.StatusCreated, map[string]any{"version": v, "active": activate})
	}
}

// adminActivate makes a stored version active: {"version": N}.
func (g *Gateway) adminActivate(a *Admin) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Version int64 `json:"version"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10)).Decode(&body); err != nil || body.Version < 1 {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", `the body must be {"version": N}`)
			return
		}
		if err := a.Store.Activate(r.Context(), body.Version); err != nil {
			storeError(w, err)
			return
		}
		g.logger.Info("rule set activated", slog.Int64(keyVersion, body.Version))
		writeJSON(w, http.StatusOK, map[string]any{"version": body.Version, "active": true})
	}
}

// storeError answers a failed store call: 404 for a missing version, 503
// for a store that cannot be reached.
func storeError(w http.ResponseWriter, err error) {
	if errors.Is(err, rules.ErrNoVersion) {
		writeOAuthError(w, http.StatusNotFound, "not_found", err.Error())
		return
	}
	writeOAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", fmt.Sprintf("the rule store did not answer: %v", err))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
