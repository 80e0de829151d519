package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

// These fuzz targets run their seed corpus as ordinary tests; run one for
// real with, for example: go test -run '^$' -fuzz FuzzDecodeSubmit ./httpapi/

var keyPattern = regexp.MustCompile(`^[A-Za-z0-9._~:-]{1,255}$`)

func FuzzParseIdempotencyKey(f *testing.F) {
	for _, s := range []string{"", "a", `"a"`, `""`, "order-42", "a b", strings.Repeat("k", 256), "clé", `"x`, "x\"", "\x00", "~:._-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		key, err := ParseIdempotencyKey(in)
		if err != nil {
			return
		}
		if !keyPattern.MatchString(key) {
			t.Fatalf("accepted %q as %q, which is not a valid key", in, key)
		}
		if again, err := ParseIdempotencyKey(key); err != nil || again != key {
			t.Fatalf("a parsed key does not parse to itself: %q -> %q, %v", key, again, err)
		}
	})
}

func FuzzParsePrefer(f *testing.F) {
	for _, s := range []string{"", "wait=5", "respond-async", "respond-async, wait=10", `wait="3"`, "wait=-1", "wait=99999999999", `a="b,c";d, wait=1`, `"unterminated, wait=2`, "\\", ";;,,=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p := ParsePrefer([]string{in})
		if p.Wait < 0 || p.Wait > (1<<32)*time.Second {
			t.Fatalf("wait out of range for %q: %s", in, p.Wait)
		}
		if p.Wait > 0 && !strings.Contains(strings.ToLower(in), "wait") {
			t.Fatalf("a wait from nowhere in %q", in)
		}
	})
}

// FuzzDecodeSubmit feeds arbitrary bodies and content types to the request
// decoder: it must never panic, must answer only with its documented
// problems, and must accept only one well-formed JSON object.
func FuzzDecodeSubmit(f *testing.F) {
	for _, s := range []string{
		`{"kind":"sleep","input":{"seconds":1}}`, `{"kind":"sleep",`, `[]`, `{}`, `{"kind":1}`, `{"kinds":"x"}`, `{} {}`, ``, `null`,
		`{"kind":"http.request","input":{"url":"https://x"},"callbackUrl":"https://y"}`, strings.Repeat("[", 100), `{"input":` + strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat("}", 40) + `}`,
		"{\"kind\":\"\\u0000\"}", `{"kind":"a","input":{"s":"]]]]"}}`,
	} {
		f.Add(s, "application/json")
	}
	f.Add(`kind=sleep`, "application/x-www-form-urlencoded")
	f.Add(`{}`, "application/merge-patch+json; charset=utf-8")
	f.Add(`{}`, "")
	s := &Server{cfg: Config{MaxBodyBytes: 4096}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	f.Fuzz(func(t *testing.T, body, contentType string) {
		r := httptest.NewRequest(http.MethodPost, "/v1/jobs", strings.NewReader(body))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		var dst submitBody
		err := s.decodeJSON(httptest.NewRecorder(), r, &dst)
		if err == nil {
			if !json.Valid([]byte(body)) || jsonDepth([]byte(body)) > maxJSONDepth {
				t.Fatalf("accepted a body that is not valid JSON or too deep: %q", body)
			}
			if len(dst.Input) > 0 && !json.Valid(dst.Input) {
				t.Fatalf("decoded input is not JSON: %q", dst.Input)
			}
			return
		}
		var p *Problem
		if !errors.As(err, &p) {
			t.Fatalf("error is not a problem: %v", err)
		}
		switch p.Status {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		default:
			t.Fatalf("unexpected status %d for %q: %v", p.Status, body, p)
		}
	})
}

func FuzzJSONDepth(f *testing.F) {
	for _, s := range []string{`{}`, `[[[]]]`, `{"a":"[[[["}`, `"\"[["`, `[{"a":[1,{"b":[]}]}]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		d := jsonDepth([]byte(in))
		if d < 0 || d > len(in) {
			t.Fatalf("depth %d for %d bytes", d, len(in))
		}
		var v any
		if json.Unmarshal([]byte(in), &v) == nil && depthOf(v) != d {
			t.Fatalf("depth of %q: counted %d, actual %d", in, d, depthOf(v))
		}
	})
}

func depthOf(v any) int {
	deepest := 0
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			deepest = max(deepest, depthOf(e))
		}
		return deepest + 1
	case []any:
		for _, e := range v {
			deepest = max(deepest, depthOf(e))
		}
		return deepest + 1
	}
	return 0
}
