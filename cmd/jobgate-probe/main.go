// Command jobgate-probe is the health check of the jobgate container image.
// The image has no shell and no curl, so Docker's HEALTHCHECK and the
// healthchecks in docker-compose.yml run this instead:
//
//	jobgate-probe [URL]
//
// It GETs URL (by default http://127.0.0.1:8080/readyz, jobgate's readiness
// probe on its default JOBGATE_HTTP_ADDR) and exits 0 on a 2xx answer and 1
// on anything else: another status, no answer within 3 seconds, or a bad URL.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// defaultURL is probed when no URL is given.
const defaultURL = "http://127.0.0.1:8080/readyz"

// timeout bounds the whole probe, connection and body included.
const timeout = 3 * time.Second

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "jobgate-probe:", err)
		os.Exit(1)
	}
}

// run GETs the URL in args, or defaultURL, and returns an error unless the
// answer is 2xx; the error carries the status and the start of the body,
// which is what `docker inspect` shows of a failing health check.
func run(args []string) error {
	url := defaultURL
	switch len(args) {
	case 0:
	case 1:
		url = args[0]
	default:
		return fmt.Errorf("usage: jobgate-probe [URL] (default %s), got %d arguments", defaultURL, len(args))
	}
	// Its own client: no shared state, no proxy from the environment.
	client := &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{DisableKeepAlives: true},
	}
	resp, err := client.Get(url)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
