// Command benchratio reads the output of `go test -bench 'BenchmarkReviews|BenchmarkFixtureMix'
// -count N` in package webhook and prints, per review, the median over the runs of each
// handler's cost per review and of the ratios to the floor (the "empty" handler). Within a
// run the handlers took turns in blocks of reviews (webhook's alternate), so a ratio is
// measured on one machine state. With -goal, it also says whether every review of
// BenchmarkReviews (the fixture mix is reported, not a review) costs its rules at most that
// many times the floor in CPU time (every thread, garbage collection included). Goals are
// reported, not enforced: this is a benchmark, and a shared machine is noisy.
//
//	go test ./webhook -run '^$' -bench 'BenchmarkReviews|BenchmarkFixtureMix' -count 5 | go run ./hack/benchratio
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

func main() {
	goal := flag.Float64("goal", 0, "report whether every review's rules/empty CPU ratio is at most this (0: no goal)")
	flag.Parse()
	runs, order, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchratio:", err)
		os.Exit(2)
	}
	if len(order) == 0 {
		fmt.Fprintln(os.Stderr, "benchratio: no BenchmarkReviews or BenchmarkFixtureMix lines with per-handler figures in the input")
		os.Exit(2)
	}
	fmt.Println("| review | rules: CPU µs (wall µs) | empty: CPU µs (wall µs) | **rules / empty, CPU** | rules / empty, wall | **rollout / empty, CPU** | kubewebhook / empty, CPU | rules: B, allocs | empty: B, allocs | runs |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	worst, worstName := 0.0, ""
	for _, name := range order {
		m := func(metric string) float64 { return median(runs[name][metric]) }
		ratio := m("rules/empty-cpu")
		// The goal holds for the rules alone and under the bench rollout (BENCHMARKS.md §10).
		for handler, r := range map[string]float64{"": ratio, " under the rollout": m("rollout/empty-cpu")} {
			if name != "FixtureMix" && r > worst {
				worst, worstName = r, name+handler
			}
		}
		column := func(metric string) string {
			if len(runs[name][metric]) == 0 {
				return "–"
			}
			return fmt.Sprintf("%.2f", m(metric))
		}
		fmt.Printf("| %s | %.1f (%.1f) | %.1f (%.1f) | **%.2f** | %.2f | **%s** | %s | %.0f, %.0f | %.0f, %.0f | %d |\n", name,
			m("rules-cpu-ns/review")/1e3, m("rules-ns/review")/1e3, m("empty-cpu-ns/review")/1e3, m("empty-ns/review")/1e3,
			ratio, m("rules/empty-wall"), column("rollout/empty-cpu"), column("kubewebhook/empty-cpu"),
			m("rules-B/review"), m("rules-allocs/review"), m("empty-B/review"), m("empty-allocs/review"), len(runs[name]["rules/empty-cpu"]))
	}
	if *goal > 0 {
		verdict := "MET"
		if worst > *goal {
			verdict = "NOT MET"
		}
		fmt.Printf("\ngoal: every review's rules, alone and under the bench rollout, within %.2f× the floor (CPU): %s (highest %.2f, %s)\n", *goal, verdict, worst, worstName)
	}
}

// parse collects, per benchmark (name without "Benchmark", "Reviews/" and the GOMAXPROCS
// suffix), each metric's value in every run, in order of appearance.
func parse(r io.Reader) (map[string]map[string][]float64, []string, error) {
	runs := map[string]map[string][]float64{}
	var order []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || !strings.Contains(sc.Text(), "rules/empty-cpu") {
			continue
		}
		name := strings.TrimPrefix(strings.TrimPrefix(f[0], "Benchmark"), "Reviews/")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		if runs[name] == nil {
			runs[name] = map[string][]float64{}
			order = append(order, name)
		}
		for j := 2; j+1 < len(f); j += 2 {
			v, err := strconv.ParseFloat(f[j], 64)
			if err != nil {
				return nil, nil, fmt.Errorf("%q: %v", sc.Text(), err)
			}
			runs[name][f[j+1]] = append(runs[name][f[j+1]], v)
		}
	}
	return runs, order, sc.Err()
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Sorted(slices.Values(xs))
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}
