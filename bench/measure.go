package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// requestTimeout bounds every request the harness makes.
const requestTimeout = 10 * time.Second

// checkRequests are made one by one to each scenario before measuring: each
// must succeed, and they fill the gateway's token caches.
const checkRequests = 5

// measureConfig configures measure.
type measureConfig struct {
	// Duration of each attack.
	Duration time.Duration
	// Rounds of attacks; every round attacks every scenario once.
	Rounds int
	// Workers is the number of concurrent requests, each on its own
	// keep-alive connection.
	Workers int
	// Rate is the requests per second to send; 0 sends as fast as the
	// workers can (closed loop).
	Rate int
	// Warmup is the length of an unmeasured attack on each scenario before
	// the first round; 0 skips it.
	Warmup time.Duration
	// Profile, if not nil, receives a CPU profile of the rounds.
	Profile io.Writer
}

// sample is the outcome of one attack.
type sample struct {
	throughput float64 // successful requests per second
	p50, p99   time.Duration
	requests   uint64
	errors     uint64
	cpu        time.Duration // CPU time of the whole process: load, proxies, upstream
	wall       time.Duration
	errorTexts []string // distinct error messages, as vegeta reports them
}

// result is one scenario's samples, one per round.
type result struct {
	name    string
	samples []sample
}

// measure checks every scenario, warms it up, then runs cfg.Rounds rounds.
// Within a round each scenario is attacked once, one after another; each
// round starts one scenario further along, so no scenario always runs first.
// Progress goes to log.
func measure(ctx context.Context, scenarios []scenario, cfg measureConfig, log io.Writer) ([]result, error) {
	client := &http.Client{Timeout: requestTimeout, Transport: &http.Transport{
		MaxIdleConnsPerHost: cfg.Workers, IdleConnTimeout: time.Minute}}
	defer client.CloseIdleConnections()
	for _, sc := range scenarios {
		if err := check(ctx, client, sc); err != nil {
			return nil, err
		}
		if cfg.Warmup > 0 {
			attack(ctx, client, sc, cfg, cfg.Warmup)
		}
	}
	results := make([]result, len(scenarios))
	for i, sc := range scenarios {
		results[i].name = sc.name
	}
	if cfg.Profile != nil {
		if err := pprof.StartCPUProfile(cfg.Profile); err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	for round := range cfg.Rounds {
		for k := range scenarios {
			i := (round + k) % len(scenarios)
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("round %d of %d: %w", round+1, cfg.Rounds, context.Cause(ctx))
			}
			s := attack(ctx, client, scenarios[i], cfg, cfg.Duration)
			results[i].samples = append(results[i].samples, s)
			fmt.Fprintf(log, "round %d/%d  %-31s %9.0f req/s  p50 %-9s p99 %-9s errors %d  cores used %.2f\n",
				round+1, cfg.Rounds, scenarios[i].name, s.throughput, round3(s.p50), round3(s.p99), s.errors,
				s.cpu.Seconds()/s.wall.Seconds())
		}
	}
	return results, nil
}

// check makes checkRequests requests to sc one by one and fails on the
// first that does not succeed, with the response that explains why.
func check(ctx context.Context, client *http.Client, sc scenario) error {
	for range checkRequests {
		var tgt vegeta.Target
		if err := sc.next(&tgt); err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		req, err := tgt.Request()
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		resp, err := client.Do(req.WithContext(ctx))
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s %s: HTTP %d: %s", sc.name, tgt.Method, tgt.URL, resp.StatusCode, strings.TrimSpace(string(body)))
		}
	}
	return nil
}

// attack runs one vegeta attack on sc for d. It stops early if ctx is done;
// every request is bounded by requestTimeout, so it ends by d plus that.
func attack(ctx context.Context, client *http.Client, sc scenario, cfg measureConfig, d time.Duration) sample {
	// Start each attack from a collected heap, so one scenario's garbage is
	// not collected in the next one's time.
	runtime.GC()
	// MaxWorkers equal to Workers: vegeta never adds workers, so Rate 0 is a
	// closed loop of exactly Workers concurrent requests.
	atk := vegeta.NewAttacker(vegeta.Client(client), vegeta.Workers(uint64(cfg.Workers)),
		vegeta.MaxWorkers(uint64(cfg.Workers)), vegeta.MaxBody(0))
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	cpu0, t0 := processCPU(), time.Now()
	var (
		m   vegeta.Metrics
		s   sample
		res = atk.Attack(sc.next, vegeta.Rate{Freq: cfg.Rate, Per: time.Second}, d, sc.name)
	)
	for r := range res {
		m.Add(r)
		if r.Error != "" {
			s.errors++
		}
	}
	m.Close()
	s.cpu, s.wall = processCPU()-cpu0, time.Since(t0)
	s.throughput, s.requests, s.errorTexts = m.Throughput, m.Requests, m.Errors
	s.p50, s.p99 = m.Latencies.P50, m.Latencies.P99
	return s
}

// median returns the median of xs, the mean of the middle two for an even
// count; 0 for none.
func median[T float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// round3 rounds d to three significant digits for printing.
func round3(d time.Duration) time.Duration {
	for _, unit := range []time.Duration{time.Second, time.Millisecond, time.Microsecond} {
		if d >= 100*unit {
			return d.Round(unit)
		}
		if d >= 10*unit {
			return d.Round(unit / 10)
		}
		if d >= unit {
			return d.Round(unit / 100)
		}
	}
	return d
}
