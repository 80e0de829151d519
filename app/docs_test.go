package app

import (
	"os"
	"reflect"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every variable jobgate reads is in the table of docs/configuration.md,
// and every variable the table names is one jobgate reads.
func TestConfigurationDocListsEveryVariable(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/configuration.md")
	require.NoError(t, err)
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(JOBGATE_[A-Z0-9_]+)`").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	read := map[string]bool{}
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		if tag := typ.Field(i).Tag.Get("envconfig"); tag != "" {
			read[tag] = true
		}
	}
	require.NotEmpty(t, read)
	for name := range read {
		require.True(t, documented[name], "jobgate reads %s (app/config.go), which the table of docs/configuration.md does not list", name)
	}
	for name := range documented {
		require.True(t, read[name], "docs/configuration.md lists %s, which jobgate does not read", name)
	}
}
