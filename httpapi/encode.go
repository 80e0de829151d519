package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// decodeJSON reads r's body into dst: JSON with a JSON Content-Type only
// (415 otherwise: a web page can send a body without a type, or as text,
// with no CORS preflight, but not as JSON), at most MaxBodyBytes (413), one
// value with no unknown fields and nothing after it (400).
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); ct != "" && (err != nil || (mt != "application/json" && !(len(mt) > 5 && mt[len(mt)-5:] == "+json"))) {
		return problem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			fmt.Sprintf("The body must be JSON (Content-Type: application/json), not %q.", ct))
	}
	tooLarge := func() error {
		return problem(http.StatusRequestEntityTooLarge, "body-too-large", "Request body too large",
			fmt.Sprintf("The body must be at most %d bytes.", s.cfg.MaxBodyBytes))
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return tooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return tooLarge()
	case err != nil:
		return badRequest("malformed-body", "Unreadable request body", "The request body could not be read completely.")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("malformed-json", "Malformed JSON", "The request body is empty; send a JSON object.")
	}
	if ct == "" {
		return problem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			"The body must be JSON, sent with Content-Type: application/json.")
	}
	if depth := jsonDepth(body); depth > maxJSONDepth {
		return badRequest("malformed-json", "JSON too deep", fmt.Sprintf("The body nests %d levels deep; at most %d are accepted.", depth, maxJSONDepth))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return badRequest("malformed-json", "Malformed JSON", describeJSONError(err, dst))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("malformed-json", "Malformed JSON", "The body holds data after its JSON object; send exactly one object.")
	}
	return nil
}

// maxJSONDepth bounds the nesting of a request body, so no input can make
// decoding (here or in a kind) recurse without end.
const maxJSONDepth = 32

// jsonDepth returns the deepest nesting of objects and arrays in data,
// ignoring brackets inside strings. It does not validate data.
func jsonDepth(data []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range data {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// describeJSONError says what is wrong with a body that did not decode
// into dst.
func describeJSONError(err error, dst any) string {
	var (
		syntax   *json.SyntaxError
		typeErr  *json.UnmarshalTypeError
		fieldErr = "json: unknown field "
	)
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("The body is not valid JSON: %s (at byte %d).", syntax.Error(), syntax.Offset)
	case errors.As(err, &typeErr):
		if typeErr.Field != "" {
			return fmt.Sprintf("Field %q must be %s, not %s.", typeErr.Field, typeErr.Type.String(), typeErr.Value)
		}
		return fmt.Sprintf("The body must be a JSON object, not %s.", typeErr.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "The body ends in the middle of a JSON value."
	case len(err.Error()) > len(fieldErr) && err.Error()[:len(fieldErr)] == fieldErr:
		return fmt.Sprintf("Unknown field %s; the body accepts %s.", err.Error()[len(fieldErr):], fieldList(dst))
	}
	return "The body is not valid JSON."
}

// writeJSON writes v as a JSON response with status.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	writeBody(w, r, status, "application/json", v)
}

// writeBody encodes v as JSON with the given content type. HEAD requests
// get the headers only.
func writeBody(w http.ResponseWriter, r *http.Request, status int, contentType string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		// Only our own types are encoded here; this is a programming error.
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"type":"` + ProblemBase + `internal","title":"Internal server error","status":500}`))
		return
	}
	writeEncoded(w, r, status, contentType, append(data, '\n'))
}

// writeEncoded writes data, a body encoded already. HEAD requests get the
// headers only.
func writeEncoded(w http.ResponseWriter, r *http.Request, status int, contentType string, data []byte) {
	if contentType == "application/json" {
		w.Header()["Content-Type"] = jsonType // the usual one, shared (secureHeaders)
	} else {
		w.Header().Set("Content-Type", contentType)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
}

var jsonType = []string{"application/json"}

type requestIDKey struct{}

func withRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// fieldList names the JSON members of the struct dst points to, in their
// order: "kind, input and callbackUrl".
func fieldList(dst any) string {
	t := reflect.TypeOf(dst)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return "no other members"
	}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	switch len(names) {
	case 0:
		return "no members"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
