package activities

import (
	"encoding/json"
	"testing"
)

// FuzzKindInputs feeds arbitrary inputs to the built-in kinds' validation:
// it must never panic, and an input it accepts must plan without panicking
// and validate the same way again.
func FuzzKindInputs(f *testing.F) {
	for _, s := range []string{
		`{"seconds":1}`, `{"seconds":-1}`, `{"seconds":86401}`, `{}`, `{"seconds":"1"}`, `{"seconds":1.5}`, `null`, `[]`,
		`{"url":"https://example.com/x","method":"POST","headers":{"A":"b"},"body":{"k":1},"timeoutSeconds":5,"maxAttempts":3}`,
		`{"url":"ftp://x"}`, `{"url":"http://user:pw@x/"}`, `{"url":"https://x","headers":{"Bad Name":"v"}}`,
		`{"url":"https://x","headers":{"A":"v\r\nInjected: 1"}}`, `{"url":"https://x","method":"get"}`, `{"url":"https://x","body":"raw text"}`,
		`{"requests":[{"url":"https://x"},{"url":"ftp://y"}],"concurrency":2}`, `{"requests":[]}`, `{"requests":[{}],"concurrency":65}`,
		`{"format":"csv","zip":true,"filter":{"state":"failed","createdFrom":"2026-01-01T00:00:00Z","createdTo":"2025-01-01T00:00:00Z"}}`, `{"format":"xml"}`,
	} {
		f.Add(s)
	}
	kinds := Builtin(Deps{})
	f.Fuzz(func(t *testing.T, in string) {
		for _, k := range kinds {
			errs := k.Validate(json.RawMessage(in))
			if len(errs) > 0 {
				for _, e := range errs {
					if e.Field == "" || e.Message == "" {
						t.Fatalf("%s: empty field error for %q: %+v", k.Name, in, e)
					}
				}
				continue
			}
			plan := k.Plan(json.RawMessage(in))
			if plan.Timeout < 0 || plan.Expected < 0 || plan.Retry.MaximumAttempts < 0 {
				t.Fatalf("%s: negative plan for %q: %+v", k.Name, in, plan)
			}
			if again := k.Validate(json.RawMessage(in)); len(again) != 0 {
				t.Fatalf("%s: %q valid once, invalid the second time: %+v", k.Name, in, again)
			}
		}
	})
}
