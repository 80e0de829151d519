package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/jobgate/jobgate/job"
)

// submitBody is the body of POST /v1/jobs.
type submitBody struct {
	Kind        string          `json:"kind"`
	Input       json.RawMessage `json:"input"`
	CallbackURL string          `json:"callbackUrl"`
	// RunAt (RFC 3339) or DelaySeconds, at most one, defer the start.
	RunAt        string `json:"runAt"`
	DelaySeconds *int64 `json:"delaySeconds"`
	// Priority is 1 (first) to 5 (last); absent is 3.
	Priority *int `json:"priority"`
}

// handleSubmit accepts a job: 202 with Location and the job's status, or
// the same job again (Idempotent-Replayed) for a repeated Idempotency-Key.
// With Prefer: wait=N it holds the answer up to N seconds: 303 to the
// result if the job succeeds in time, 200 with the status if it fails or is
// canceled; at once when the tenant has all its stream slots open.
func (s *Server) handleSubmit(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	key, err := idempotencyKey(r, s.cfg.RequireIdempotencyKey)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	var body submitBody
	if err := s.decodeJSON(w, r, &body); err != nil {
		s.Error(w, r, err)
		return
	}
	if err := validateSubmit(body, s.signsWebhooks(s.tenant(r))); err != nil {
		s.Error(w, r, err)
		return
	}
	runAt, priority, err := s.timing(body)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	j, created, err := s.jobs.Submit(r.Context(), job.SubmitRequest{
		Tenant:         s.tenant(r),
		IdempotencyKey: key,
		Kind:           body.Kind,
		Input:          body.Input,
		CallbackURL:    body.CallbackURL,
		RequestID:      requestID(r.Context()),
		MaxActive:      s.limiter.limits(s.tenant(r)).MaxActive,
		RunAt:          runAt,
		Priority:       priority,
		FairnessWeight: s.limiter.limits(s.tenant(r)).Weight,
	})
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.acceptedHeaders(w, r, j, created, start)

	prefs := ParsePrefer(r.Header.Values("Prefer"))
	if prefs.RespondAsync {
		w.Header().Set("Preference-Applied", "respond-async")
	} else if wait := min(prefs.Wait, s.cfg.MaxWait); wait > 0 {
		// Waiting holds one of the tenant's stream slots; with none free
		// the job is accepted all the same, with the 202 at once.
		if release, err := s.holdStream(r); err == nil {
			j = s.waitTerminal(r.Context(), s.tenant(r), j, wait)
			release()
		}
		if j.State.Terminal() {
			w.Header().Set("Preference-Applied", "wait="+strconv.Itoa(int(wait/time.Second)))
			code := http.StatusOK
			if j.State == job.StateSucceeded {
				code = http.StatusSeeOther
			}
			s.writeStatus(w, r, code, j)
			return
		}
	}
	s.writeStatus(w, r, http.StatusAccepted, j)
}

// waitTerminal waits up to wait for j to finish and returns its latest
// status; on any error it returns what it knew.
func (s *Server) waitTerminal(ctx context.Context, tenant string, j *job.Job, wait time.Duration) *job.Job {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	next, err := s.jobs.Await(ctx, tenant, j)
	if err != nil {
		return j
	}
	return next
}

// validateSubmit checks the envelope of a submission; the kind checks its
// input. signs tells whether webhooks can be signed for the caller.
func validateSubmit(b submitBody, signs bool) error {
	var errs []job.FieldError
	if b.Kind == "" {
		errs = append(errs, job.FieldError{Field: "/kind", Message: "is required: name a job kind (GET /v1/kinds lists them)"})
	}
	if len(b.Input) > 0 && b.Input[0] != '{' && string(b.Input) != "null" {
		errs = append(errs, job.FieldError{Field: "/input", Message: "must be a JSON object"})
	}
	if b.CallbackURL != "" {
		if u, err := url.Parse(b.CallbackURL); err != nil || !u.IsAbs() || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(b.CallbackURL) > 2048 {
			errs = append(errs, job.FieldError{Field: "/callbackUrl", Message: "must be an absolute http:// or https:// URL without credentials, at most 2048 characters"})
		} else if !signs {
			errs = append(errs, job.FieldError{Field: "/callbackUrl", Message: "this deployment has no webhook signing secret for your tenant (JOBGATE_WEBHOOK_SECRETS); poll statusUrl instead"})
		}
	}
	if len(errs) > 0 {
		return &job.ValidationError{Kind: b.Kind, Fields: errs}
	}
	return nil
}

// handleGet answers a job's status: 303 to the result once it succeeded
// (200 with ?redirect=false), 200 otherwise, 304 for a matching
// If-None-Match. With Prefer: wait=N it long-polls: it answers as soon as
// the job changes (from the If-None-Match version if given, else from now),
// or after N seconds, holding one of the tenant's stream slots (429 when
// none is free).
func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	redirect := true
	switch v := r.URL.Query().Get("redirect"); v {
	case "", "true":
	case "false":
		redirect = false
	default:
		s.Error(w, r, badRequest("invalid-query", "Invalid query parameter", "redirect must be true or false, not "+strconv.Quote(v)+"."))
		return
	}
	tenant, id := s.tenant(r), mux.Vars(r)["id"]
	ifNoneMatch := r.Header.Get("If-None-Match")
	var (
		j   *job.Job
		err error
	)
	wait := min(ParsePrefer(r.Header.Values("Prefer")).Wait, s.cfg.MaxWait)
	if wait > 0 {
		// A long-poll holds one of the tenant's stream slots, and reads
		// the job only through the shared watcher, so any number of them
		// cost one Temporal call per watch interval.
		release, herr := s.holdStream(r)
		if herr != nil {
			s.Error(w, r, herr)
			return
		}
		defer release()
		j, err = s.longPoll(r.Context(), tenant, id, versionOf(ifNoneMatch), wait)
	} else {
		j, err = s.jobs.Get(r.Context(), tenant, id)
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if wait > 0 {
		w.Header().Set("Preference-Applied", "wait="+strconv.Itoa(int(wait/time.Second)))
	}
	tag := etag(j)
	if etagMatches(ifNoneMatch, tag) {
		s.statusHeaders(w, j, tag)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	code := http.StatusOK
	if j.State == job.StateSucceeded && redirect {
		code = http.StatusSeeOther
	}
	s.writeStatusTagged(w, r, code, j, tag)
}

// longPoll waits up to wait for the job to differ from version (the
// client's copy), or from its current status when the client sent none,
// and returns its status then.
func (s *Server) longPoll(ctx context.Context, tenant, id, version string, wait time.Duration) (*job.Job, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if version == "" {
		cur, err := s.jobs.Watch(ctx, tenant, id, "")
		if err != nil || cur.State.Terminal() {
			return cur, err
		}
		version = cur.Version()
	}
	return s.jobs.Watch(ctx, tenant, id, version)
}

// handleResult answers a succeeded job's result (409 before that): small
// JSON results from the job's record, large ones and files streamed from
// blob storage with their type, length and file name. Range and
// conditional requests work on both.
func (s *Server) handleResult(w http.ResponseWriter, r *http.Request) {
	res, j, err := s.jobs.OpenResult(r.Context(), s.tenant(r), mux.Vars(r)["id"])
	if err != nil {
		s.Error(w, r, err)
		return
	}
	defer res.Content.Close()
	h := w.Header()
	h.Set("Cache-Control", "private")
	h.Set("Expires", j.ExpiresAt.UTC().Format(http.TimeFormat))
	h.Set("Content-Type", res.ContentType)
	if res.Digest != "" {
		h.Set("ETag", `"`+res.Digest+`"`)
	}
	switch {
	case res.Filename != "":
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": res.Filename}))
	case !isJSON(res.ContentType):
		// A file a job produced is a download, not a page of this origin.
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": downloadName(j.ID, res.ContentType)}))
	}
	// ServeContent answers an unsatisfiable range in plain text; the
	// contract answers it as a problem.
	rw := &refusal{ResponseWriter: w}
	// A large download outlasts the server's write timeout; give it time
	// for its size at a slow 64 KiB/s, and at least the usual.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(2*time.Minute + time.Duration(res.Size/(64<<10))*time.Second))
	http.ServeContent(rw, r, "", res.ModTime, res.Content)
	switch rw.code {
	case http.StatusRequestedRangeNotSatisfiable:
		s.Error(w, r, problem(rw.code, "range-not-satisfiable", "Range not satisfiable",
			fmt.Sprintf("The result is %d bytes long; ask for a range within it.", res.Size)))
	case http.StatusPreconditionFailed:
		s.Error(w, r, problem(rw.code, "precondition-failed", "Precondition failed",
			"The result does not match If-Match or If-Unmodified-Since; it is the same for the job's whole life."))
	}
}

// refusal holds back ServeContent's 416 and 412 answers, which it writes in
// plain text or bare, so that the handler answers them as problems.
type refusal struct {
	http.ResponseWriter
	code int
}

func (w *refusal) WriteHeader(code int) {
	if code == http.StatusRequestedRangeNotSatisfiable || code == http.StatusPreconditionFailed {
		w.code = code
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *refusal) Write(p []byte) (int, error) {
	if w.code != 0 {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// signsWebhooks reports whether the deployment can sign webhooks for the
// tenant.
func (s *Server) signsWebhooks(tenant string) bool {
	return s.cfg.WebhookTenants == nil || s.cfg.WebhookTenants(tenant)
}

// handleCancel requests cancellation: 202 while it takes effect, 204 if the
// job is already canceled, 409 if it finished otherwise.
func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) {
	j, err := s.jobs.Cancel(r.Context(), s.tenant(r), mux.Vars(r)["id"])
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if j.State == job.StateCanceled {
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Location", s.url(r, statusPath(j.ID)))
	w.Header().Set("Operation-Location", s.absoluteURL(r, operationPath(j.ID)))
	s.writeStatus(w, r, http.StatusAccepted, j)
}

// acceptedHeaders sets what every answer about an accepted job carries:
// Location and Operation-Location of its monitors, Idempotent-Replayed for
// a repeated key; a new job is counted as accepted.
func (s *Server) acceptedHeaders(w http.ResponseWriter, r *http.Request, j *job.Job, created bool, start time.Time) {
	if !created {
		w.Header().Set("Idempotent-Replayed", "true")
	} else if s.cfg.Observer != nil {
		s.cfg.Observer.JobAccepted(j.Kind, time.Since(start))
	}
	w.Header().Set("Location", s.url(r, statusPath(j.ID)))
	w.Header().Set("Operation-Location", s.absoluteURL(r, operationPath(j.ID)))
}
