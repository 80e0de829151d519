// Command jobgate runs the jobgate service with its built-in job kinds;
// docs/configuration.md lists its JOBGATE_* configuration.
package main

import "github.com/jobgate/jobgate/app"

func main() { app.Main() }
