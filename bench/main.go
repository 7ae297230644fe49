// Command bench is Gatehouse's load harness. It starts the real parts in
// one process on loopback — a trivial upstream, a plain
// httputil.ReverseProxy in front of it, the gateway in front of it and the
// dev stack's authorization server — measures named scenarios against them
// with vegeta, round after round, and prints a markdown table of the
// medians. See docs/benchmarks.md.
//
//	go run ./bench -duration 5s -rounds 3
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the command-line flags.
type options struct {
	duration  time.Duration
	rounds    int
	workers   int
	rate      int
	scenarios []string
}

// Limits on the flags, so that a typo cannot start an endless run.
const (
	maxDuration = 10 * time.Minute
	maxRounds   = 100
	maxWorkers  = 1024
	// setupTimeout bounds starting and stopping the parts.
	setupTimeout = time.Minute
)

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "length of each attack (one scenario, one round)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each attacks every scenario once, and the table shows medians")
	fs.IntVar(&o.workers, "workers", 2*runtime.GOMAXPROCS(0),
		"concurrent requests, each on its own keep-alive connection; two per GOMAXPROCS unless set")
	fs.IntVar(&o.rate, "rate", 0, "requests per second per attack; 0 sends as fast as the workers can")
	names := fs.String("scenarios", strings.Join(scenarioNames, ","), "comma-separated scenarios to run")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.duration <= 0 || o.duration > maxDuration {
		return o, fmt.Errorf("-duration %s: want more than 0 and at most %s", o.duration, maxDuration)
	}
	if o.rounds < 1 || o.rounds > maxRounds {
		return o, fmt.Errorf("-rounds %d: want 1 to %d", o.rounds, maxRounds)
	}
	if o.workers < 1 || o.workers > maxWorkers {
		return o, fmt.Errorf("-workers %d: want 1 to %d", o.workers, maxWorkers)
	}
	if o.rate < 0 {
		return o, fmt.Errorf("-rate %d: want 0 (as fast as possible) or more", o.rate)
	}
	var want []string
	for n := range strings.SplitSeq(*names, ",") {
		if n = strings.TrimSpace(n); n != "" && !slices.Contains(scenarioNames, n) {
			return o, fmt.Errorf("-scenarios: unknown scenario %q; known: %s", n, strings.Join(scenarioNames, ", "))
		}
		want = append(want, n)
	}
	for _, n := range scenarioNames { // in the order they run
		if slices.Contains(want, n) {
			o.scenarios = append(o.scenarios, n)
		}
	}
	if len(o.scenarios) == 0 {
		return o, errors.New("-scenarios: none selected")
	}
	return o, nil
}

// measureConfig is the attack plan of o: every attack preceded by one
// unmeasured warm-up attack per scenario of half its length, at most 1s.
func (o options) measureConfig() measureConfig {
	return measureConfig{Duration: o.duration, Rounds: o.rounds, Workers: o.workers, Rate: o.rate,
		Warmup: min(o.duration/2, time.Second)}
}

// budget bounds the whole run: set-up, every attack, and a request timeout
// on top of each, since an attack waits for its requests in flight.
func (o options) budget() time.Duration {
	c := o.measureConfig()
	attacks := time.Duration(len(o.scenarios))
	return 2*setupTimeout + attacks*(time.Duration(c.Rounds)*c.Duration+c.Warmup) +
		attacks*time.Duration(c.Rounds+1)*requestTimeout
}

// run is the whole command: args are os.Args, the table goes to stdout and
// progress and warnings to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	started := time.Now()
	o, err := parseOptions(args[1:], stderr)
	if err != nil {
		return err
	}
	budget := o.budget()
	ctx, cancel := context.WithTimeoutCause(ctx, budget, fmt.Errorf("run exceeded its budget of %s", budget))
	defer cancel()
	dir, err := os.MkdirTemp("", "gatehouse-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// The token outlives the run, so neither the bearer token nor the Basic
	// cache entry expires while it is measured.
	p, err := startParts(ctx, partsConfig{DataDir: dir, TokenTTL: budget + time.Minute, Logger: logger})
	if err != nil {
		return err
	}
	defer p.Close()
	var selected []scenario
	for _, sc := range p.scenarios {
		if slices.Contains(o.scenarios, sc.name) {
			selected = append(selected, sc)
		}
	}
	results, err := measure(ctx, selected, o.measureConfig(), stderr)
	if err != nil {
		return err
	}
	writeHeader(stdout, args, o, started)
	writeTable(stdout, results)
	return nil
}
