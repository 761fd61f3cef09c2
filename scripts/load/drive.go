package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// The request every connection sends: a machine-to-machine client asking
// for one of the four scopes it is granted.
const (
	formType  = "application/x-www-form-urlencoded"
	tokenForm = "grant_type=client_credentials&client_id=demo-m2m&client_secret=load-secret" +
		"&audience=https%3A%2F%2Fapi.example.com&scope=read%3Aclaims"
)

// target is one proxy under load and what was measured of it.
type target struct {
	name, url string
	wantScope string // the scope its answers must carry; "" for any
	pid       int    // the process serving it
	total     stats
}

// stats is the outcome of one or more rounds of load.
type stats struct {
	requests, errors int
	firstErr         error
	latencies        []time.Duration
	elapsed          time.Duration
	cpu              time.Duration // the proxy's own CPU time
}

func (t *target) add(s stats) {
	t.total.requests += s.requests
	t.total.errors += s.errors
	if t.total.firstErr == nil {
		t.total.firstErr = s.firstErr
	}
	t.total.latencies = append(t.total.latencies, s.latencies...)
	t.total.elapsed += s.elapsed
	t.total.cpu += s.cpu
}

// check sends one request and checks its answer: a token, with the scope
// the target must give.
func (t *target) check() error {
	res, err := http.Post(t.url, formType, strings.NewReader(tokenForm))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	var answer struct {
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope"`
	}
	if err := json.NewDecoder(res.Body).Decode(&answer); err != nil {
		return fmt.Errorf("check answer: %w", err)
	}
	if answer.AccessToken == "" || (t.wantScope != "" && answer.Scope != t.wantScope) {
		return fmt.Errorf("check answer: status %d, scope %q, want a token with scope %q", res.StatusCode, answer.Scope, t.wantScope)
	}
	return nil
}

// drive sends token requests on conns keep-alive connections for d.
func drive(url string, conns int, d time.Duration) stats {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true,
	}}
	defer client.CloseIdleConnections()

	var mu sync.Mutex
	var total stats
	begin := time.Now()
	deadline := begin.Add(d)
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			s := worker(client, url, deadline)
			mu.Lock()
			defer mu.Unlock()
			total.requests += s.requests
			total.errors += s.errors
			if total.firstErr == nil {
				total.firstErr = s.firstErr
			}
			total.latencies = append(total.latencies, s.latencies...)
		})
	}
	wg.Wait()
	total.elapsed = time.Since(begin)
	return total
}

// worker sends requests one after another until the deadline.
func worker(client *http.Client, url string, deadline time.Time) stats {
	var s stats
	for time.Now().Before(deadline) {
		t0 := time.Now()
		err := post(client, url)
		s.latencies = append(s.latencies, time.Since(t0))
		s.requests++
		if err != nil {
			s.errors++
			if s.firstErr == nil {
				s.firstErr = err
			}
		}
	}
	return s
}

// post sends one token request and reads the whole answer.
func post(client *http.Client, url string) error {
	res, err := client.Post(url, formType, strings.NewReader(tokenForm))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"access_token"`) {
		return fmt.Errorf("status %d", res.StatusCode)
	}
	return nil
}

// report prints one row per target and the two figures issue 2 sets:
// throughput against the bare proxy, and the gateway's peak RSS.
func report(targets []*target, conns int, round time.Duration, rounds int, rss int64) {
	fmt.Printf("%d connections, %d rounds of %s per target, alternated\n\n", conns, rounds, round)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "target\trequests\terrors\treq/s\tp50\tp99\tCPU per request")
	for _, t := range targets {
		s := t.total
		slices.Sort(s.latencies)
		fmt.Fprintf(w, "%s\t%d\t%d\t%.0f\t%s\t%s\t%s\n", t.name, s.requests, s.errors,
			s.rate(), quantile(s.latencies, 0.50), quantile(s.latencies, 0.99),
			(s.cpu / time.Duration(max(s.requests, 1))).Round(time.Microsecond))
	}
	w.Flush()

	bare, gw := targets[0].total, targets[1].total
	fmt.Printf("\nrulesgate throughput: %.0f%% of the bare proxy (target: at least 80%%)\n", 100*gw.rate()/bare.rate())
	fmt.Printf("rulesgate peak RSS: %.1f MB (target: under 100 MB)\n", float64(rss)/(1<<20))
}

func (s stats) rate() float64 { return float64(s.requests) / s.elapsed.Seconds() }

// quantile returns the q-quantile of sorted latencies, rounded for reading.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1))].Round(10 * time.Microsecond)
}
