package job

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// compileSchema compiles a kind's input schema (JSON Schema 2020-12 unless
// it says otherwise). A schema must be self-contained: references to other
// documents are not fetched.
func compileSchema(name string, schema json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return nil, fmt.Errorf("job kind %q: its InputSchema is not JSON: %w", name, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noLoader{})
	url := "urn:jobgate:kind:" + name
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("job kind %q: its InputSchema cannot be used: %w", name, err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("job kind %q: its InputSchema is not a valid JSON Schema: %w", name, err)
	}
	return s, nil
}

// newPrinter is the printer of schema error messages.
func newPrinter() *message.Printer { return message.NewPrinter(language.English) }

// noLoader refuses to load other documents, so no schema makes the API
// reach out to the network or the file system.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("schemas must be self-contained; not loading %s", url)
}

// checkSchema validates input against s and returns the problems as field
// errors under /input, one per failing value, sorted by field.
func checkSchema(s *jsonschema.Schema, input json.RawMessage, p *message.Printer) []FieldError {
	if len(bytes.TrimSpace(input)) == 0 || string(bytes.TrimSpace(input)) == "null" {
		input = json.RawMessage("{}")
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(input))
	if err != nil {
		return []FieldError{{Field: "/input", Message: "must be one JSON value: " + err.Error()}}
	}
	err = s.Validate(v)
	if err == nil {
		return nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return []FieldError{{Field: "/input", Message: err.Error()}}
	}
	var out []FieldError
	seen := map[string]bool{}
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		for _, fe := range fieldErrors(e, p) {
			if key := fe.Field + "\x00" + fe.Message; !seen[key] {
				seen[key] = true
				out = append(out, fe)
			}
		}
	}
	walk(verr)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

// fieldErrors turns one failed schema keyword into field errors: a missing
// or unknown property points at the property itself.
func fieldErrors(e *jsonschema.ValidationError, p *message.Printer) []FieldError {
	at := "/input" + pointer(e.InstanceLocation)
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		out := make([]FieldError, 0, len(k.Missing))
		for _, name := range k.Missing {
			out = append(out, FieldError{Field: at + "/" + escapePointer(name), Message: "is required"})
		}
		return out
	case *kind.AdditionalProperties:
		out := make([]FieldError, 0, len(k.Properties))
		for _, name := range k.Properties {
			out = append(out, FieldError{Field: at + "/" + escapePointer(name), Message: "unknown field"})
		}
		return out
	}
	return []FieldError{{Field: at, Message: e.ErrorKind.LocalizedString(p)}}
}

func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(escapePointer(t))
	}
	return b.String()
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
