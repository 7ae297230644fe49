package main

import (
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// writeHeader prints what a reader needs to reproduce and weigh the numbers:
// the command line, the settings in force, Go and the machine.
func writeHeader(w io.Writer, args []string, o options, started time.Time, cost passwordCost) {
	fmt.Fprintf(w, "# Gatehouse load harness\n\n")
	fmt.Fprintf(w, "- command: `%s`\n", commandLine(args))
	rate := "max (closed loop)"
	if o.rate > 0 {
		rate = strconv.Itoa(o.rate) + " req/s"
	}
	fmt.Fprintf(w, "- settings: duration %s per attack, %d rounds, %d workers, rate %s, scenarios %s\n",
		o.duration, o.rounds, o.workers, rate, strings.Join(o.scenarios, ","))
	if o.postgres != "" {
		fmt.Fprintf(w, "- postgres: %s (a fresh schema, dropped at the end)\n", postgresServer(o.postgres))
	}
	if slices.ContainsFunc(o.scenarios, func(n string) bool { return strings.HasPrefix(n, "as-refresh") }) {
		fmt.Fprintf(w, "- as-refresh: a pool of %d refresh tokens per store, minted before measuring, each presented once; "+
			"refresh grace off, so a reuse would fail\n", o.refreshPool)
	}
	fmt.Fprintf(w, "- password cost: %s\n", cost)
	fmt.Fprintf(w, "- go: %s %s/%s, GOMAXPROCS %d, %d CPUs%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.GOMAXPROCS(0), runtime.NumCPU(), cpuModel())
	fmt.Fprintf(w, "- started: %s, finished: %s\n\n", started.UTC().Format(time.RFC3339),
		time.Now().UTC().Format(time.RFC3339))
}

// postgresServer is the host and database of dsn, without credentials.
func postgresServer(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Host + u.Path
}

// commandLine is args as a shell would take them back, with the program
// named by its base name ("bench" under go run).
func commandLine(args []string) string {
	parts := []string{"bench"}
	for _, a := range args[1:] {
		if u, err := url.Parse(a); err == nil && u.User != nil {
			a = u.Redacted() // a -postgres URL with a password
		}
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// cpuModel is ", " and the CPU model from /proc/cpuinfo, or "" where there
// is none.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return ", " + strings.TrimSpace(v)
		}
	}
	return ""
}

// writeTable prints the results as a markdown table, then the distinct
// errors of any scenario that had some.
func writeTable(w io.Writer, results []result) {
	fmt.Fprintln(w, "| scenario | req/s | p50 | p99 | errors | vs baseline | vs reverseproxy | CPU/req | cores used | req/s by round |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|")
	base, proxy := find(results, "baseline"), find(results, "reverseproxy")
	for _, r := range results {
		var (
			rps, cores          []float64
			p50, p99, cpuPerReq []time.Duration
			requests, errs      uint64
			byRound             []string
		)
		for _, s := range r.samples {
			rps, byRound = append(rps, s.throughput), append(byRound, fmt.Sprintf("%.0f", s.throughput))
			p50, p99 = append(p50, s.p50), append(p99, s.p99)
			if s.requests > 0 && s.wall > 0 {
				cpuPerReq = append(cpuPerReq, s.cpu/time.Duration(s.requests))
				cores = append(cores, s.cpu.Seconds()/s.wall.Seconds())
			}
			requests, errs = requests+s.requests, errs+s.errors
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %d of %d | %s | %s | %s | %.2f | %s |\n", r.name, median(rps),
			round3(median(p50)), round3(median(p99)), errs, requests, ratio(r, base), ratio(r, proxy),
			round3(median(cpuPerReq)), median(cores), strings.Join(byRound, ", "))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "req/s (successful requests per second), p50, p99, CPU/req and cores used are medians over the rounds; "+
		"vs baseline (vs reverseproxy) is the median over the rounds of req/s divided by "+
		"the baseline's (the reverse proxy's) req/s in the same round; "+
		"CPU/req is the CPU time of the whole process (load generator, proxies, upstream) per request, "+
		"and cores used that CPU time over the wall time; errors are totals over the rounds.")
	writeNoise(w, results)
	for _, r := range results {
		seen := map[string]bool{}
		for _, s := range r.samples {
			for _, e := range s.errorTexts {
				if !seen[e] {
					seen[e] = true
					fmt.Fprintf(w, "\n%s error: %s\n", r.name, e)
				}
			}
		}
	}
}

// writeNoise says how far apart the rounds were and how much CPU the
// process got, so a reader can tell a quiet run from a disturbed one.
func writeNoise(w io.Writer, results []result) {
	spread, minCores, maxCores := 1.0, math.Inf(1), 0.0
	for _, r := range results {
		lo, hi := math.Inf(1), 0.0
		for _, s := range r.samples {
			lo, hi = min(lo, s.throughput), max(hi, s.throughput)
			if s.wall > 0 {
				c := s.cpu.Seconds() / s.wall.Seconds()
				minCores, maxCores = min(minCores, c), max(maxCores, c)
			}
		}
		if lo > 0 {
			spread = max(spread, hi/lo)
		}
	}
	fmt.Fprintf(w, "\nNoise: the rounds of one scenario differ by up to %.2f× in req/s; ", spread)
	fmt.Fprintf(w, "the process used %.2f to %.2f of its %d cores during the attacks. "+
		"A wide spread or a low figure means other processes took the CPU: trust CPU/req over req/s then.\n",
		minCores, maxCores, runtime.GOMAXPROCS(0))
}

// find returns the result of the named scenario, nil if it did not run.
func find(results []result, name string) *result {
	for i := range results {
		if results[i].name == name {
			return &results[i]
		}
	}
	return nil
}

// ratio is the median over the rounds of r's throughput divided by base's
// in the same round; pairing by round cancels slow drift in the machine's
// speed. It is "–" when base did not run.
func ratio(r result, base *result) string {
	if base == nil {
		return "–"
	}
	var rs []float64
	for i, s := range r.samples {
		if i < len(base.samples) && base.samples[i].throughput > 0 {
			rs = append(rs, s.throughput/base.samples[i].throughput)
		}
	}
	if len(rs) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", median(rs))
}
