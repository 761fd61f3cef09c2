package gateway

import "github.com/prometheus/client_golang/prometheus"

// metrics are the gateway's Prometheus series.
type metrics struct {
	requests      *prometheus.CounterVec
	scopesDropped prometheus.Counter
	claimsDropped prometheus.Counter
	jwksFetches   *prometheus.CounterVec
	shadowRuns    *prometheus.CounterVec
	shadowDiffs   *prometheus.CounterVec
	ruleVersion   prometheus.Gauge
	ruleSwaps     prometheus.Counter
	ruleLoadFails prometheus.Counter
	storeUp       prometheus.Gauge
	requestTime   *prometheus.HistogramVec
	upstreamTime  prometheus.Histogram
	extensionTime *prometheus.HistogramVec
}

// latencyBuckets span a token request's life: a rule of tens of
// microseconds to an upstream call of seconds.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rulesgate_token_requests_total",
			Help: "Token requests by outcome: issued, opaque, denied, bad_request, upstream_error, verification_failure, rule_error, timeout, not_ready.",
		}, []string{"outcome"}),
		scopesDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rulesgate_scopes_dropped_total",
			Help: "Scopes extensions asked for outside the upstream grant, dropped.",
		}),
		claimsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rulesgate_claims_dropped_total",
			Help: "Writes of restricted claims by extensions, dropped.",
		}),
		jwksFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rulesgate_upstream_jwks_fetches_total",
			Help: "Fetches of the upstream JWKS by result: ok (from the upstream), shared (a fleet-mate's copy, from Redis), error.",
		}, []string{"result"}),
		shadowRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rulesgate_shadow_runs_total",
			Help: "Shadow action runs by result: match, mismatch, error, not_compared (the live run failed), skipped (too many in flight).",
		}, []string{"result"}),
		shadowDiffs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rulesgate_shadow_mismatches_total",
			Help: "Differences between shadow and live outcomes, by the shadow action that wrote the field (none when no shadow action did) and field: scopes, claim, deny.",
		}, []string{"action", "field"}),
	}
	m.ruleVersion = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rulesgate_ruleset_version",
		Help: "The rule set version in use: its number in the store, 0 for rules read from directories, -1 for none.",
	})
	m.ruleVersion.Set(-1)
	m.ruleSwaps = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "rulesgate_ruleset_swaps_total",
		Help: "Rule set versions taken into use.",
	})
	m.ruleLoadFails = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "rulesgate_ruleset_load_errors_total",
		Help: "Active versions that could not be loaded or compiled; the version in use stays.",
	})
	m.storeUp = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rulesgate_rule_store_up",
		Help: "1 when the last call to the rule store (Redis) succeeded, else 0.",
	})
	m.requestTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "rulesgate_token_request_duration_seconds", Buckets: latencyBuckets,
		Help: "Token requests, from the first byte read to the answer, by outcome.",
	}, []string{"outcome"})
	m.upstreamTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "rulesgate_upstream_duration_seconds", Buckets: latencyBuckets,
		Help: "Calls to the upstream token endpoint, until its answer's headers.",
	})
	m.extensionTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "rulesgate_extension_duration_seconds", Buckets: latencyBuckets,
		Help: "Runs of each rule, hook and action, by file name.",
	}, []string{"extension"})
	reg.MustRegister(m.requests, m.scopesDropped, m.claimsDropped, m.jwksFetches, m.shadowRuns, m.shadowDiffs,
		m.ruleVersion, m.ruleSwaps, m.ruleLoadFails, m.storeUp, m.requestTime, m.upstreamTime, m.extensionTime)
	// Every outcome is shown from the start, at zero.
	for _, o := range []string{outcomeIssued, outcomeOpaque, outcomeDenied, outcomeBadRequest,
		outcomeUpstream, outcomeVerification, outcomeRuleError, outcomeTimeout, outcomeNotReady} {
		m.requests.WithLabelValues(o)
	}
	for _, r := range []string{"match", "mismatch", "error", "not_compared", "skipped"} {
		m.shadowRuns.WithLabelValues(r)
	}
	return m
}
