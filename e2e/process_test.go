package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// This file runs the gatehouse binary as child processes, the way an
// operator starts each part: built once per test binary, started with a
// config file, found by the "<what> ready addr=…" line each listener logs,
// and stopped with SIGTERM.

// Bounds of a child process's life in a test.
const (
	// readyTimeout: how long a process may take to log its ready line
	// (a loaded 2-CPU machine, a -race build).
	readyTimeout = time.Minute
	// stopTimeout: how long a process may take to exit after SIGTERM
	// before it is killed (the servers' graceful shutdown is 15s at most).
	stopTimeout = 20 * time.Second
	// maxOutput: how much of a process's output is kept for the test log.
	maxOutput = 256 << 10
)

// built is the gatehouse binary, built once per test binary by
// gatehouseBinary and removed by TestMain.
var built struct {
	once      sync.Once
	dir, path string
	err       error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// gatehouseBinary builds ./cmd/gatehouse of this module (with -race if the
// tests run with it) and returns its path.
func gatehouseBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		start := time.Now()
		built.path, built.err = buildGatehouse()
		if built.err == nil {
			t.Logf("built the gatehouse binary in %v (once per test binary)", time.Since(start).Round(time.Millisecond))
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

func buildGatehouse() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("go env GOMOD: %q, %v", gomod, err)
	}
	if built.dir, err = os.MkdirTemp("", "gatehouse-e2e-"); err != nil {
		return "", err
	}
	path := filepath.Join(built.dir, "gatehouse")
	args := []string{"build", "-o", path}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/gatehouse")...)
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/gatehouse: %v\n%s", err, out)
	}
	return path, nil
}

// runGatehouse runs a short gatehouse command (such as `ca init`) to its
// end and fails the test if it fails.
func runGatehouse(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), gatehouseBinary(t), args...)
	cmd.Env = childEnv(nil)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gatehouse %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// process is a gatehouse child process.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *output
	done chan struct{} // closed when the process has exited
	err  error         // of Wait, once done
}

// startProcess starts gatehouse with args as the process called name, with
// env added to a clean environment. The process is stopped with SIGTERM
// and waited for when t ends (killed if it takes longer than stopTimeout);
// its output goes to the test log if t failed, and a process that did not
// exit cleanly fails t.
func startProcess(t *testing.T, name string, env []string, args ...string) *process {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, gatehouseBinary(t), args...)
	cmd.Env = childEnv(env)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = stopTimeout
	p := &process{name: name, cmd: cmd, out: newOutput(), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		exitedEarly := p.exited()
		stopping := time.Now()
		cancel()
		<-p.done
		switch {
		case exitedEarly:
			t.Errorf("%s exited before the test ended: %v", name, p.err)
		case !cmd.ProcessState.Success():
			t.Errorf("%s did not stop cleanly on SIGTERM: %v (after %v)", name, cmd.ProcessState, time.Since(stopping).Round(time.Millisecond))
		}
		if t.Failed() {
			t.Logf("output of %s (%s):\n%s", name, strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// addr waits for the line "<what> ready addr=…" and returns the address.
func (p *process) addr(t *testing.T, what string) string {
	t.Helper()
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	for {
		addr, changed := p.out.ready(what + " ready")
		if addr != "" {
			return addr
		}
		select {
		case <-changed:
		case <-p.done:
			t.Fatalf("%s exited (%v) before logging %q (its output follows)", p.name, p.err, what+" ready")
		case <-deadline.C:
			t.Fatalf("%s did not log %q within %v (its output follows)", p.name, what+" ready", readyTimeout)
		}
	}
}

// childEnv is this process's environment without Gatehouse's variables
// and proxy settings, plus env.
func childEnv(env []string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch uk := strings.ToUpper(k); {
		case strings.HasPrefix(uk, "GATEHOUSE_"), uk == "HTTP_PROXY", uk == "HTTPS_PROXY", uk == "NO_PROXY",
			uk == "ALL_PROXY", uk == "REQUEST_METHOD":
			continue
		}
		out = append(out, kv)
	}
	if raceEnabled && os.Getenv("GORACE") == "" {
		// A -race binary waits 1s at exit for late reports; six of them,
		// stopped one after the other, would add 6s to every test.
		out = append(out, "GORACE=atexit_sleep_ms=50")
	}
	return append(out, env...)
}

// readyLine matches the line every gatehouse listener logs once it
// accepts connections (cmd/gatehouse's listenAndServe).
var readyLine = regexp.MustCompile(`msg="([^"]* ready)" addr=(\S+)`)

// output keeps the last maxOutput bytes a process wrote, and the addresses
// of its ready lines.
type output struct {
	mu      sync.Mutex
	buf     []byte
	partial []byte            // the line being written
	addrs   map[string]string // by message, such as "gateway ready"
	changed chan struct{}     // closed (and replaced) when addrs grows
}

func newOutput() *output {
	return &output{addrs: map[string]string{}, changed: make(chan struct{})}
}

// Write implements io.Writer.
func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf = append(o.buf, b...)
	if over := len(o.buf) - maxOutput; over > 0 {
		o.buf = append(o.buf[:0], o.buf[over:]...)
	}
	o.partial = append(o.partial, b...)
	for {
		line, rest, ok := bytes.Cut(o.partial, []byte("\n"))
		if !ok {
			break
		}
		if m := readyLine.FindSubmatch(line); m != nil {
			o.addrs[string(m[1])] = string(m[2])
			close(o.changed)
			o.changed = make(chan struct{})
		}
		o.partial = append(o.partial[:0], rest...)
	}
	return len(b), nil
}

// ready returns the address of the line msg, or "" and a channel closed
// when another ready line arrives.
func (o *output) ready(msg string) (string, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.addrs[msg], o.changed
}

// String returns what was kept of the output.
func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(o.buf)
}
