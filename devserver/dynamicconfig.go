package devserver

import (
	"errors"
	"fmt"
	"os"

	"go.temporal.io/server/common/dynamicconfig"
)

// loadDynamicConfig reads a dynamic config file with the server's own
// loader. The server itself only logs a key it does not know (and a value
// that fails validation), and goes on without it; here both are errors, so
// a misspelt or retired setting is noticed. An empty path is no file.
func loadDynamicConfig(path string) (dynamicconfig.ConfigValueMap, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("embedded Temporal dynamic config: %w", err)
	}
	lr := dynamicconfig.LoadYamlFile(data)
	if problems := append(lr.Errors, lr.Warnings...); len(problems) > 0 {
		return nil, fmt.Errorf("embedded Temporal dynamic config %s: %w", path, errors.Join(problems...))
	}
	return lr.Map, nil
}

// overlayDynamicConfig adds the file's settings to base, replacing base's
// value of a key the file sets too.
func overlayDynamicConfig(file dynamicconfig.ConfigValueMap, base dynamicconfig.StaticClient) dynamicconfig.StaticClient {
	for k, v := range file {
		base[k] = v
	}
	return base
}
