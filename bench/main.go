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
	// postgres is the DSN under which the "-pg" scenarios run; "" runs
	// none.
	postgres string
	// refreshPool is the number of refresh tokens minted per store for
	// as-refresh; 0 sizes it from the rate and the attack lengths.
	refreshPool int
	// cpuProfile, if set, is where the CPU profile of the measured rounds
	// goes.
	cpuProfile string
}

// Limits on the flags, so that a typo cannot start an endless run.
const (
	maxDuration = 10 * time.Minute
	maxRounds   = 100
	maxWorkers  = 1024
	// setupTimeout bounds starting and stopping the parts.
	setupTimeout = time.Minute
	// mintAllowance is the time budgeted per refresh token of the pool
	// (there is a pool per store, but the budget is generous).
	mintAllowance = 10 * time.Millisecond
)

func parseOptions(args []string, stderr io.Writer) (o options, err error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "length of each attack (one scenario, one round)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each attacks every scenario once, and the table shows medians")
	fs.IntVar(&o.workers, "workers", 2*runtime.GOMAXPROCS(0),
		"concurrent requests, each on its own keep-alive connection; two per GOMAXPROCS unless set")
	fs.IntVar(&o.rate, "rate", 0, "requests per second per attack; 0 sends as fast as the workers can")
	names := fs.String("scenarios", strings.Join(scenarioNames, ","),
		"comma-separated scenarios to run; with -postgres an as-* scenario also selects its -pg variant")
	fs.StringVar(&o.postgres, "postgres", os.Getenv("GATEHOUSE_BENCH_POSTGRES"),
		"PostgreSQL URL; runs the as-* scenarios on it too, in a schema created and dropped by the harness "+
			"(default $GATEHOUSE_BENCH_POSTGRES)")
	fs.IntVar(&o.refreshPool, "refresh-pool", 0, fmt.Sprintf("refresh tokens to mint per store for as-refresh, "+
		"each used once; 0 sizes the pool from -rate (or %d req/s) times the attacks, at most %d",
		assumedMaxRefreshRate, maxRefreshPool))
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured rounds (set-up, checks and warm-up excluded) to this file")
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
	if o.refreshPool < 0 || o.refreshPool > maxRefreshPool {
		return o, fmt.Errorf("-refresh-pool %d: want 0 (sized from the run) to %d", o.refreshPool, maxRefreshPool)
	}
	o.scenarios, err = selectScenarios(*names, o.postgres != "")
	if err != nil {
		return o, err
	}
	if o.refreshPool == 0 {
		o.refreshPool = refreshPoolSize(o.measureConfig())
	}
	return o, nil
}

// selectScenarios returns the scenarios named in the comma list names, in
// the order they run. With pg, naming an authorization-server scenario also
// selects its PostgreSQL variant; without, the variants are unknown.
func selectScenarios(names string, pg bool) ([]string, error) {
	known := slices.Clone(scenarioNames)
	if pg {
		known = append(known, pgNames()...)
	}
	var want []string
	for n := range strings.SplitSeq(names, ",") {
		if n = strings.TrimSpace(n); n != "" && !slices.Contains(known, n) {
			return nil, fmt.Errorf("-scenarios: unknown scenario %q; known: %s", n, strings.Join(known, ", "))
		}
		want = append(want, n)
		if pg && slices.Contains(asScenarioNames, n) {
			want = append(want, n+pgSuffix)
		}
	}
	var selected []string
	for _, n := range known { // in the order they run
		if slices.Contains(want, n) {
			selected = append(selected, n)
		}
	}
	if len(selected) == 0 {
		return nil, errors.New("-scenarios: none selected")
	}
	return selected, nil
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
	return 2*setupTimeout + time.Duration(o.refreshPool)*mintAllowance + attacks*(time.Duration(c.Rounds)*c.Duration+c.Warmup) +
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
	p, err := startParts(ctx, partsConfig{DataDir: dir, TokenTTL: budget + time.Minute, Logger: logger,
		Scenarios: o.scenarios, Postgres: o.postgres, RefreshPool: o.refreshPool, Minters: o.workers})
	if err != nil {
		return err
	}
	defer p.Close()
	cost, err := measurePasswordCost(ctx, p)
	if err != nil {
		return err
	}
	cfg := o.measureConfig()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		cfg.Profile = f
	}
	results, err := measure(ctx, p.scenarios, cfg, stderr)
	if err != nil {
		return err
	}
	writeHeader(stdout, args, o, started, cost)
	writeTable(stdout, results)
	return p.Close()
}
