package main

import (
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestScenarios runs every scenario briefly against the real parts, so the
// harness cannot rot unnoticed: each must serve requests and none may fail.
func TestScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the dev stack and puts load on it")
	}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	// PostgreSQL only when asked for: the -pg scenarios need a server.
	pg := os.Getenv("GATEHOUSE_BENCH_POSTGRES")
	names := slices.Clone(scenarioNames)
	if pg != "" {
		names = append(names, pgNames()...)
	}
	cfg := measureConfig{Duration: 200 * time.Millisecond, Rounds: 1, Workers: 4}
	p, err := startParts(t.Context(), partsConfig{DataDir: t.TempDir(), TokenTTL: 5 * time.Minute, Logger: logger,
		Scenarios: names, Postgres: pg, RefreshPool: refreshPoolSize(cfg), Minters: cfg.Workers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	if got := len(p.scenarios); got != len(names) {
		t.Fatalf("got %d scenarios, want %d", got, len(names))
	}
	results, err := measure(t.Context(), p.scenarios, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		s := r.samples[0]
		if s.errors != 0 {
			t.Errorf("%s: got %d errors of %d requests (%s), want 0", r.name, s.errors, s.requests, strings.Join(s.errorTexts, "; "))
		}
		if s.throughput <= 0 {
			t.Errorf("%s: got %.0f req/s, want more than 0", r.name, s.throughput)
		}
	}
	var table strings.Builder
	writeTable(&table, results)
	for _, name := range names {
		if !strings.Contains(table.String(), "| "+name+" |") {
			t.Errorf("table has no row %q:\n%s", name, table.String())
		}
	}
}
