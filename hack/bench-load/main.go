// Command bench-load measures what the storage-webhook costs over the bare HTTPS stack it is
// built on. In one run it starts, on 127.0.0.1 only:
//
//   - the real binary: storage-webhook serve --cluster testdata/cluster --self-signed, and
//   - a no-op webhook on the same stack (net/http with serve's TLS settings: TLS 1.2+,
//     http/1.1 only, the same timeouts and header cap, a self-signed ECDSA certificate from
//     the certs package) that decodes each review with webhook.DecodeReview and answers it
//     allowed with its UID, JSON-encoding an admissionv1.AdmissionReview like the handler.
//
// The no-op's code lives here, not in serve. By default this tool runs it as a child process
// of itself (-noop process), so both servers are separate processes with their own Go
// runtime and their CPU time can be read from /proc; -noop inprocess serves it from the
// tool's own process, sharing its runtime with the load generator.
//
// Both get the same mixed stream (every fixture under testdata/admission, round-robin,
// vegeta's static targeter) over keep-alive TLS, at fixed rates (-rates, default
// 500,1000,2000 per second) for -duration each and then at vegeta's maximum rate (-workers
// workers, no pacing) in -max-rounds rounds. Within a step the targets run one after the
// other, and the order alternates from step to step, so drifting machine load hits both
// alike. Each step prints a table (rate asked, throughput, success ratio, p50/p99/max
// latency, server and generator CPU per request) and the storage-webhook/no-op ratios; at
// the end the goals are checked:
//
//   - throughput at maximum rate at least 0.9 of the no-op's, in the median round (one
//     round's ratio moved from 0.56 to 0.83 between two runs of the same build),
//   - p99 latency under 2 ms at 1000/s.
//
// Goals not met are reported, not failures. The exit status is 1 when any request failed
// (transport error, a status other than 200, or a body that is not the AdmissionReview
// answer of the review sent: wrong UID, wrong allowed) or the servers could not be started.
//
//	go run ./hack/bench-load -binary bin/storage-webhook -duration 10s -json bench.json
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	vegeta "github.com/tsenart/vegeta/v12/lib"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/hcistorage/storage-webhook/certs"
	"github.com/hcistorage/storage-webhook/internal/loadtest"
	"github.com/hcistorage/storage-webhook/webhook"
)

const (
	nameWebhook = "storage-webhook"
	nameNoop    = "no-op"

	// The goals.
	goalMaxThroughputRatio = 0.9
	goalP99Rate            = 1000
	goalP99                = 2 * time.Millisecond

	// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat (100 on Linux).
	clockTicks = 100
)

func main() {
	serveNoop := flag.Bool("serve-noop", false, "internal: serve the no-op webhook on 127.0.0.1:0, print its address, stop when stdin closes")
	binary := flag.String("binary", "bin/storage-webhook", "the storage-webhook binary")
	duration := flag.Duration("duration", 10*time.Second, "how long each target is driven in each step")
	rates := flag.String("rates", "500,1000,2000", "fixed rates (reviews per second), comma-separated; the maximum-rate rounds follow")
	maxRounds := flag.Int("max-rounds", 3, "rounds of the maximum-rate step, each target in turn (the goal takes the median round's ratio)")
	workers := flag.Uint64("workers", 16, "workers of the maximum-rate step (vegeta -rate 0 -workers N -max-workers N)")
	connections := flag.Int("connections", 1000, "idle keep-alive connections kept per target (vegeta -connections)")
	warmup := flag.Duration("warmup", 2*time.Second, "unmeasured load at the first rate on each target before the steps (connections, heap, caches)")
	pause := flag.Duration("pause", time.Second, "idle time before each measured run")
	timeout := flag.Duration("timeout", 10*time.Second, "per-request timeout")
	noop := flag.String("noop", "process", "where the no-op server runs: process (a child process of this tool) or inprocess")
	fixtures := flag.String("fixtures", "testdata/admission", "folder of JSON fixtures (webhook path, review, expected answer)")
	clusterDir := flag.String("cluster", "testdata/cluster", "cluster view given to serve --cluster")
	logLevel := flag.String("log-level", "info", "serve --log-level (info is serve's default: one line per denial)")
	jsonOut := flag.String("json", "", "also write the figures to this file as JSON (for BENCHMARKS.md)")
	flag.Parse()

	if *serveNoop {
		if err := runNoopChild(); err != nil {
			fmt.Fprintln(os.Stderr, "bench-load no-op:", err)
			os.Exit(1)
		}
		return
	}
	cfg := config{
		binary: *binary, duration: *duration, workers: *workers, connections: *connections,
		warmup: *warmup, pause: *pause, timeout: *timeout, noop: *noop, fixtures: *fixtures,
		cluster: *clusterDir, logLevel: *logLevel, jsonOut: *jsonOut,
	}
	for _, s := range strings.Split(*rates, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || r <= 0 {
			fmt.Fprintf(os.Stderr, "bench-load: -rates: %q is not a positive number\n", s)
			os.Exit(2)
		}
		cfg.rates = append(cfg.rates, r)
	}
	cfg.maxRounds = *maxRounds
	if cfg.duration <= 0 || cfg.workers == 0 || cfg.maxRounds < 1 || (cfg.noop != "process" && cfg.noop != "inprocess") {
		fmt.Fprintln(os.Stderr, "bench-load: -duration and -workers must be positive, -noop process or inprocess")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	failed, err := run(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-load:", err)
		os.Exit(1)
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "bench-load: %d requests failed\n", failed)
		os.Exit(1)
	}
}

type config struct {
	binary                            string
	duration, warmup, pause, timeout  time.Duration
	rates                             []int
	workers                           uint64
	connections                       int
	noop, fixtures, cluster, logLevel string
	maxRounds                         int
	jsonOut                           string
}

// server is one of the two targets.
type server struct {
	name    string
	pid     int // 0 when it runs in this process: no CPU figure
	client  *http.Client
	targets []vegeta.Target
	want    map[string]want // by request UID
	// allowed is the answer this server must give to a fixture.
	allowed func(want) bool
}

type want struct {
	url     string
	allowed bool
}

// runResult is one target driven at one rate.
type runResult struct {
	Target     string  `json:"target"`
	Rate       int     `json:"rate"` // 0: maximum rate
	Workers    uint64  `json:"workers,omitempty"`
	Requests   int     `json:"requests"`
	Failed     int     `json:"failed"`
	Sent       float64 `json:"sent_per_second"`
	Throughput float64 `json:"throughput_per_second"` // good answers / (duration + wait), as vegeta
	Success    float64 `json:"success_ratio"`
	P50        float64 `json:"p50_ms"`
	P99        float64 `json:"p99_ms"`
	Max        float64 `json:"max_ms"`
	// CPU is the server's user+system CPU time per request (microseconds), from /proc.
	CPU float64 `json:"server_cpu_us_per_request,omitempty"`
	// ClientCPU is this tool's CPU time per request (microseconds): vegeta, TLS and the
	// answer checks (and the no-op server too with -noop inprocess).
	ClientCPU  float64    `json:"client_cpu_us_per_request"`
	Load1      [2]float64 `json:"load1_start_end"`
	FirstError string     `json:"first_error,omitempty"`

	p99 time.Duration
}

type step struct {
	Label   string      `json:"label"`
	Rate    int         `json:"rate"` // 0: maximum rate
	Order   []string    `json:"order"`
	Results []runResult `json:"results"`
	Ratios  ratios      `json:"ratios_storage_webhook_over_noop"`
}

type ratios struct {
	Throughput float64 `json:"throughput"`
	P99        float64 `json:"p99"`
	CPU        float64 `json:"cpu_per_request,omitempty"`
}

type goal struct {
	Goal  string  `json:"goal"`
	Value float64 `json:"value"`
	Limit float64 `json:"limit"`
	Met   bool    `json:"met"`
}

type report struct {
	Date          time.Time  `json:"date"`
	GoVersion     string     `json:"go_version"`
	CPUs          int        `json:"cpus"`
	Duration      string     `json:"duration_per_run"`
	Workers       uint64     `json:"max_rate_workers"`
	Fixtures      int        `json:"fixtures"`
	Noop          string     `json:"noop_server"`
	ServeLogLevel string     `json:"serve_log_level"`
	LoadStart     [3]float64 `json:"loadavg_start"`
	LoadEnd       [3]float64 `json:"loadavg_end"`
	Steps         []step     `json:"steps"`
	Goals         []goal     `json:"goals"`
	FailedTotal   int        `json:"failed_requests"`
}

func run(ctx context.Context, cfg config) (failed int, err error) {
	fx, err := loadtest.Reviews(cfg.fixtures)
	if err != nil {
		return 0, err
	}
	rep := &report{
		Date: time.Now().UTC().Truncate(time.Second), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		Duration: cfg.duration.String(), Workers: cfg.workers, Fixtures: len(fx), Noop: cfg.noop,
		ServeLogLevel: cfg.logLevel, LoadStart: loadavg(),
	}

	// storage-webhook serve, its log in a temporary file kept only if something fails.
	logFile, err := os.CreateTemp("", "bench-load-serve-*.log")
	if err != nil {
		return 0, err
	}
	defer func() {
		logFile.Close()
		if err != nil || failed > 0 {
			fmt.Fprintf(os.Stderr, "bench-load: storage-webhook log: %s\n", logFile.Name())
		} else {
			os.Remove(logFile.Name())
		}
	}()
	port, err := loadtest.FreePort()
	if err != nil {
		return 0, err
	}
	probe, err := loadtest.FreePort()
	if err != nil {
		return 0, err
	}
	serve := exec.Command(cfg.binary, "serve", "--cluster", cfg.cluster, "--self-signed",
		"--listen", "127.0.0.1:"+strconv.Itoa(port), "--metrics-listen", "127.0.0.1:"+strconv.Itoa(probe),
		"--log-level", cfg.logLevel, "--shutdown-delay", "0s")
	serve.Stdout, serve.Stderr = logFile, logFile
	if err := serve.Start(); err != nil {
		return 0, err
	}
	serveDone := make(chan error, 1)
	go func() { serveDone <- serve.Wait() }()
	defer func() {
		_ = serve.Process.Signal(os.Interrupt)
		select {
		case <-serveDone:
		case <-time.After(10 * time.Second):
			_ = serve.Process.Kill()
			<-serveDone
		}
	}()
	if err := waitReady(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", probe), serveDone); err != nil {
		return 0, fmt.Errorf("storage-webhook: %w", err)
	}

	// The no-op server.
	var noopAddr string
	noopPID := 0
	if cfg.noop == "inprocess" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		srv, err := noopServer()
		if err != nil {
			return 0, err
		}
		go func() { _ = srv.ServeTLS(ln, "", "") }()
		defer srv.Close()
		noopAddr = ln.Addr().String()
	} else {
		self, err := os.Executable()
		if err != nil {
			return 0, err
		}
		child := exec.Command(self, "-serve-noop")
		child.Stderr = os.Stderr
		stdin, err := child.StdinPipe()
		if err != nil {
			return 0, err
		}
		stdout, err := child.StdoutPipe()
		if err != nil {
			return 0, err
		}
		if err := child.Start(); err != nil {
			return 0, err
		}
		defer func() { stdin.Close(); _ = child.Wait() }() // closing stdin stops it
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			return 0, fmt.Errorf("no-op server did not start: %v", err)
		}
		noopAddr, noopPID = strings.TrimSpace(line), child.Process.Pid
	}

	hook := newServer(nameWebhook, "https://127.0.0.1:"+strconv.Itoa(port), serve.Process.Pid, fx, cfg,
		func(w want) bool { return w.allowed })
	nop := newServer(nameNoop, "https://"+noopAddr, noopPID, fx, cfg, func(want) bool { return true })
	pair := [2]*server{hook, nop}

	fmt.Printf("bench-load: %d fixtures round-robin, %v per run, %d CPUs, %s, no-op server %s, serve --log-level %s\n",
		len(fx), cfg.duration, rep.CPUs, rep.GoVersion, cfg.noop, cfg.logLevel)
	fmt.Printf("bench-load: load average at start %s\n", fmtLoad(rep.LoadStart))

	// Warm-up: opens the keep-alive connections (through an attacker whose options
	// configure the shared transport), grows heaps, fills caches. Checked, not reported.
	for _, s := range pair {
		opts := []func(*vegeta.Attacker){
			vegeta.Client(s.client), vegeta.KeepAlive(true), vegeta.HTTP2(false),
			vegeta.TLSConfig(&tls.Config{InsecureSkipVerify: true}), // the throwaway certificates
			vegeta.Connections(cfg.connections),
		}
		if cfg.warmup > 0 {
			r := attack(ctx, s, vegeta.NewAttacker(opts...), cfg.rates[0], 0, cfg.warmup)
			failed += r.Failed
			if r.Failed > 0 {
				fmt.Printf("warm-up %s: %d of %d failed, first: %s\n", s.name, r.Failed, r.Requests, r.FirstError)
			}
		} else {
			vegeta.NewAttacker(opts...) // configures the shared transport only
		}
	}

	levels := slices.Clone(cfg.rates)
	for range cfg.maxRounds {
		levels = append(levels, 0)
	}
	for i, rate := range levels {
		if ctx.Err() != nil {
			return failed, ctx.Err()
		}
		order := pair
		if i%2 == 1 {
			order = [2]*server{nop, hook}
		}
		st := step{Rate: rate, Label: fmt.Sprintf("%d/s", rate)}
		w := uint64(0)
		if rate == 0 {
			w = cfg.workers
			st.Label = fmt.Sprintf("max (%d workers)", w)
			if cfg.maxRounds > 1 {
				st.Label += fmt.Sprintf(", round %d/%d", i-len(cfg.rates)+1, cfg.maxRounds)
			}
		}
		byName := map[string]runResult{}
		for _, s := range order {
			if err := sleepCtx(ctx, cfg.pause); err != nil {
				return failed, err
			}
			opts := []func(*vegeta.Attacker){vegeta.Client(s.client)}
			if w > 0 {
				opts = append(opts, vegeta.Workers(w), vegeta.MaxWorkers(w))
			}
			r := attack(ctx, s, vegeta.NewAttacker(opts...), rate, w, cfg.duration)
			failed += r.Failed
			st.Order = append(st.Order, s.name)
			st.Results = append(st.Results, r)
			byName[s.name] = r
		}
		h, n := byName[nameWebhook], byName[nameNoop]
		st.Ratios = ratios{Throughput: div(h.Throughput, n.Throughput), P99: div(h.P99, n.P99), CPU: div(h.CPU, n.CPU)}
		rep.Steps = append(rep.Steps, st)
		printStep(os.Stdout, i+1, len(levels), st)
	}

	rep.LoadEnd = loadavg()
	rep.FailedTotal = failed
	rep.Goals = goals(rep.Steps)
	fmt.Printf("\nbench-load: load average at end %s\n", fmtLoad(rep.LoadEnd))
	fmt.Println("goals (reported, not enforced):")
	for _, g := range rep.Goals {
		verdict := "MET"
		if !g.Met {
			verdict = "NOT MET"
		}
		fmt.Printf("  %-62s %s\n", g.Goal, verdict)
	}
	fmt.Printf("failed requests: %d\n", failed)
	select {
	case err := <-serveDone:
		serveDone <- err
		return failed, fmt.Errorf("storage-webhook exited during the run: %v", err)
	default:
	}
	if cfg.jsonOut != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return failed, err
		}
		if err := os.WriteFile(cfg.jsonOut, append(data, '\n'), 0o644); err != nil {
			return failed, err
		}
		fmt.Printf("figures written to %s\n", cfg.jsonOut)
	}
	return failed, nil
}

func newServer(name, base string, pid int, fx []loadtest.Review, cfg config, allowed func(want) bool) *server {
	s := &server{name: name, pid: pid, want: make(map[string]want, len(fx)), allowed: allowed}
	// Configured further by vegeta's options on the warm-up attacker; every later attacker
	// shares this client's transport, so connections stay open from run to run.
	s.client = &http.Client{Timeout: cfg.timeout, Transport: &http.Transport{
		DialContext: (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
	}}
	hdr := http.Header{"Content-Type": []string{"application/json"}}
	for _, f := range fx {
		url := base + f.Path
		s.targets = append(s.targets, vegeta.Target{Method: http.MethodPost, URL: url, Body: f.Body, Header: hdr})
		s.want[f.UID] = want{url: url, allowed: f.Allowed}
	}
	return s
}

// attack drives one server at rate (0: as fast as w workers go) for d, checking every answer.
func attack(ctx context.Context, s *server, atk *vegeta.Attacker, rate int, w uint64, d time.Duration) runResult {
	r := runResult{Target: s.name, Rate: rate, Workers: w}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			atk.Stop()
		case <-done:
		}
	}()
	r.Load1[0] = loadavg()[0]
	cpu0, self0 := cpuTicks(s.pid), cpuTicks(os.Getpid())
	var (
		lat                   []time.Duration
		earliest, latest, end time.Time
		good                  int
	)
	for res := range atk.Attack(vegeta.NewStaticTargeter(s.targets...), vegeta.Rate{Freq: rate, Per: time.Second}, d, s.name) {
		lat = append(lat, res.Latency)
		if earliest.IsZero() || res.Timestamp.Before(earliest) {
			earliest = res.Timestamp
		}
		if res.Timestamp.After(latest) {
			latest = res.Timestamp
		}
		if e := res.End(); e.After(end) {
			end = e
		}
		if err := s.check(res); err != nil {
			r.Failed++
			if r.FirstError == "" {
				r.FirstError = err.Error()
			}
			continue
		}
		good++
	}
	cpu1, self1 := cpuTicks(s.pid), cpuTicks(os.Getpid())
	r.Load1[1] = loadavg()[0]
	r.Requests = len(lat)
	if r.Requests == 0 {
		return r
	}
	if span := latest.Sub(earliest); span > 0 {
		r.Sent = float64(r.Requests) / span.Seconds()
		r.Throughput = float64(good) / end.Sub(earliest).Seconds()
	}
	r.Success = float64(good) / float64(r.Requests)
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		return lat[min(len(lat)-1, int(math.Ceil(p*float64(len(lat))))-1)]
	}
	r.p99 = pct(0.99)
	r.P50, r.P99, r.Max = ms(pct(0.50)), ms(r.p99), ms(lat[len(lat)-1])
	if s.pid != 0 && cpu0 >= 0 && cpu1 >= 0 {
		r.CPU = float64(cpu1-cpu0) * (1e6 / clockTicks) / float64(r.Requests)
	}
	if self0 >= 0 && self1 >= 0 {
		r.ClientCPU = float64(self1-self0) * (1e6 / clockTicks) / float64(r.Requests)
	}
	return r
}

// check accepts only a 200 whose body is the admission.k8s.io/v1 answer to a review of
// this URL, with the allowed this server must give. It reads the body with encoding/json/v2
// (go-json-experiment/json), which reads in one pass what encoding/json reads in two: the
// generator shares the two cores with the servers, and storage-webhook's answers (warnings,
// messages, audit annotations, patches) are larger than the no-op's, so a costlier check
// took more from storage-webhook's throughput than from the no-op's.
func (s *server) check(res *vegeta.Result) error {
	if res.Error != "" {
		return errors.New(res.Error)
	}
	if res.Code != http.StatusOK {
		return fmt.Errorf("HTTP %d: %.200s", res.Code, res.Body)
	}
	var out struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Response   *struct {
			UID     string `json:"uid"`
			Allowed bool   `json:"allowed"`
		} `json:"response"`
	}
	if err := jsonv2.Unmarshal(res.Body, &out); err != nil {
		return fmt.Errorf("bad body: %v: %.200s", err, res.Body)
	}
	if out.APIVersion != admissionv1.SchemeGroupVersion.String() || out.Kind != "AdmissionReview" || out.Response == nil {
		return fmt.Errorf("bad body: not an admission.k8s.io/v1 AdmissionReview response: %.200s", res.Body)
	}
	w, ok := s.want[out.Response.UID]
	if !ok || w.url != res.URL {
		return fmt.Errorf("bad body: uid %q is not one of the reviews sent to %s", out.Response.UID, res.URL)
	}
	if out.Response.Allowed != s.allowed(w) {
		return fmt.Errorf("bad body: %s answered allowed=%t for uid %s, want %t", res.URL, out.Response.Allowed, out.Response.UID, s.allowed(w))
	}
	return nil
}

// goals checks the p99 at goalP99Rate and the throughput at maximum rate: the median of the
// rounds' ratios, since a shared machine's speed moves more from round to round than the
// ratio does within one (each round runs both targets, in alternating order).
func goals(steps []step) []goal {
	var out []goal
	var maxRatios []float64
	for _, st := range steps {
		switch {
		case st.Rate == 0:
			maxRatios = append(maxRatios, st.Ratios.Throughput)
		case st.Rate == goalP99Rate:
			for _, r := range st.Results {
				if r.Target == nameWebhook {
					out = append(out, goal{Goal: fmt.Sprintf("storage-webhook p99 at %d/s < %v: %s", goalP99Rate, goalP99, fmtDur(r.p99)),
						Value: r.P99, Limit: ms(goalP99), Met: r.p99 < goalP99})
				}
			}
		}
	}
	if len(maxRatios) > 0 {
		slices.Sort(maxRatios)
		m := maxRatios[len(maxRatios)/2]
		if len(maxRatios)%2 == 0 {
			m = (maxRatios[len(maxRatios)/2-1] + m) / 2
		}
		out = append(out, goal{Goal: fmt.Sprintf("throughput at max rate >= %.1f x no-op (median of %d rounds, %.3f-%.3f): %.3f",
			goalMaxThroughputRatio, len(maxRatios), maxRatios[0], maxRatios[len(maxRatios)-1], m),
			Value: m, Limit: goalMaxThroughputRatio, Met: m >= goalMaxThroughputRatio})
	}
	return out
}

func printStep(out io.Writer, i, n int, st step) {
	fmt.Fprintf(out, "\nstep %d/%d: %s, %s first\n", i, n, st.Label, st.Order[0])
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\trate asked\trequests\tthroughput/s\tsuccess\tp50\tp99\tmax\tserver CPU/req\tclient CPU/req\tload1\t")
	for _, r := range st.Results {
		cpu := "-"
		if r.CPU > 0 {
			cpu = fmt.Sprintf("%.0fµs", r.CPU)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%.2f%%\t%s\t%s\t%s\t%s\t%.0fµs\t%.2f→%.2f\t\n", r.Target, st.Label, r.Requests, r.Throughput,
			100*r.Success, fmtMS(r.P50), fmtMS(r.P99), fmtMS(r.Max), cpu, r.ClientCPU, r.Load1[0], r.Load1[1])
	}
	tw.Flush()
	cpu := ""
	if st.Ratios.CPU > 0 {
		cpu = fmt.Sprintf(", CPU/req %.2f", st.Ratios.CPU)
	}
	fmt.Fprintf(out, "storage-webhook/no-op: throughput %.3f, p99 %.2f%s\n", st.Ratios.Throughput, st.Ratios.P99, cpu)
	for _, r := range st.Results {
		if r.Failed > 0 {
			fmt.Fprintf(out, "%s: %d of %d failed, first: %s\n", r.Target, r.Failed, r.Requests, r.FirstError)
		}
	}
}

// runNoopChild is the -serve-noop mode: the no-op webhook on 127.0.0.1:0 until stdin closes.
func runNoopChild() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv, err := noopServer()
	if err != nil {
		return err
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin) // the parent closed it, or is gone
		_ = srv.Close()
	}()
	signal.Ignore(syscall.SIGINT) // a ^C reaches the whole process group; the parent stops us
	fmt.Println(ln.Addr())
	if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// noopServer is the webhook server of cmd/serve.go with nothing behind DecodeReview: the
// same http.Server timeouts and header cap, HTTP/2 off, the same TLS configuration for
// --self-signed (TLS 1.2+, http/1.1 only, an ECDSA certificate for localhost) and the same
// body cap, answering every review allowed with its UID.
func noopServer() (*http.Server, error) {
	cert, err := certs.SelfSigned([]string{"localhost", "127.0.0.1", "::1"}, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	var shuttingDown atomic.Bool // as serve's wrapper: read once per request
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if shuttingDown.Load() {
			w.Header().Set("Connection", "close")
		}
		if r.Method != http.MethodPost {
			http.Error(w, "send AdmissionReviews with POST", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, webhook.DefaultMaxBodyBytes+1))
		if err != nil || len(body) > webhook.DefaultMaxBodyBytes {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		review, err := webhook.DecodeReview(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out, err := json.Marshal(&admissionv1.AdmissionReview{TypeMeta: review.TypeMeta,
			Response: &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	})
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         &tls.Config{NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog:     log.New(os.Stderr, "no-op: ", 0),
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}, // HTTP/2 off, as serve
	}
	srv.RegisterOnShutdown(func() { shuttingDown.Store(true) })
	return srv, nil
}

// waitReady polls serve's /readyz until it answers 200, serve exits or 30 s pass.
func waitReady(ctx context.Context, url string, exited chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("exited before it was ready: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready within 30s")
}

// cpuTicks is a process's user+system CPU time in clock ticks, or -1.
func cpuTicks(pid int) int64 {
	if pid <= 0 {
		return -1
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// Fields after "pid (comm)": state is the 3rd field of the line, utime the 14th, stime the 15th.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return -1
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return u + s
}

// loadavg is the 1, 5 and 15 minute load averages from /proc/loadavg.
func loadavg() [3]float64 {
	var l [3]float64
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	for i, f := range strings.Fields(string(data)) {
		if i == 3 {
			break
		}
		l[i], _ = strconv.ParseFloat(f, 64)
	}
	return l
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func fmtMS(v float64) string { return fmtDur(time.Duration(v * 1e6)) }

func fmtDur(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
	return fmt.Sprintf("%.2fms", float64(d)/1e6)
}

func fmtLoad(l [3]float64) string {
	return fmt.Sprintf("%.2f %.2f %.2f (1, 5, 15 min)", l[0], l[1], l[2])
}
