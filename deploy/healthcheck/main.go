// Command healthcheck asks a URL for its health and exits 0 when the
// answer is 2xx, 1 otherwise. The gateway's image has no shell and no
// curl; its HEALTHCHECK runs this instead.
//
// Usage:
//
//	healthcheck [URL]
//
// The URL defaults to the gateway's liveness endpoint on the admin
// listener, http://127.0.0.1:9090/healthz; RULESGATE_HEALTHCHECK_URL
// overrides the default, an argument overrides both.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

const defaultURL = "http://127.0.0.1:9090/healthz"

func main() {
	url := defaultURL
	if v := os.Getenv("RULESGATE_HEALTHCHECK_URL"); v != "" {
		url = v
	}
	if len(os.Args) > 1 {
		url = os.Args[1]
	}
	if err := check(url); err != nil {
		fmt.Fprintf(os.Stderr, "healthcheck: %v\n", err)
		os.Exit(1)
	}
}

// check GETs url within a few seconds and wants a 2xx answer.
func check(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
