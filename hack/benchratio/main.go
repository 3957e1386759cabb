// Command benchratio reads the output of `go test -bench BenchmarkReviews -count N` and
// prints, per review, the median cost of each handler and the median of the per-run ratios
// to the floor (the "empty" handler). A ratio is taken within one run, where the handlers
// ran one right after the other, so that a machine that gets busier or quieter between runs
// moves the costs but not the ratios. With -max, it exits 1 when a review's rules cost more
// than that many times the floor (by CPU time, the steadier measure on a shared machine).
//
//	go test ./webhook -run '^$' -bench BenchmarkReviews -benchmem -count 5 | go run ./hack/benchratio
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

// sample is one benchmark line's figures.
type sample struct{ ns, cpu, bytes, allocs float64 }

func main() {
	limit := flag.Float64("max", 0, "exit 1 when a review's rules/empty CPU ratio is above this (0: no check)")
	flag.Parse()
	runs, order, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchratio:", err)
		os.Exit(2)
	}
	if len(order) == 0 {
		fmt.Fprintln(os.Stderr, "benchratio: no BenchmarkReviews lines in the input")
		os.Exit(2)
	}
	fmt.Println("| review | rules µs (CPU µs) | empty µs (CPU µs) | rules / empty, wall | **rules / empty, CPU** | kubewebhook / empty, CPU | rules B, allocs | empty B, allocs | runs |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	over := 0
	for _, c := range order {
		r, e, k := runs[c]["rules"], runs[c]["empty"], runs[c]["kubewebhook"]
		n := min(len(r), len(e))
		if n == 0 {
			continue
		}
		wall, cpu, kwh := ratios(r, e, n, func(s sample) float64 { return s.ns }), ratios(r, e, n, func(s sample) float64 { return s.cpu }), ratios(k, e, min(len(k), n), func(s sample) float64 { return s.cpu })
		if *limit > 0 && median(cpu) > *limit {
			over++
		}
		fmt.Printf("| %s | %.1f (%.1f) | %.1f (%.1f) | %.2f | **%.2f** | %s | %.0f, %.0f | %.0f, %.0f | %d |\n", c,
			med(r, func(s sample) float64 { return s.ns })/1e3, med(r, func(s sample) float64 { return s.cpu })/1e3,
			med(e, func(s sample) float64 { return s.ns })/1e3, med(e, func(s sample) float64 { return s.cpu })/1e3,
			median(wall), median(cpu), orDash(kwh),
			med(r, func(s sample) float64 { return s.bytes }), med(r, func(s sample) float64 { return s.allocs }),
			med(e, func(s sample) float64 { return s.bytes }), med(e, func(s sample) float64 { return s.allocs }), n)
	}
	if over > 0 {
		fmt.Fprintf(os.Stderr, "benchratio: %d review(s) above %.2f times the floor\n", over, *limit)
		os.Exit(1)
	}
}

// parse groups the BenchmarkReviews lines by review and handler, in order of appearance.
func parse(r io.Reader) (map[string]map[string][]sample, []string, error) {
	runs := map[string]map[string][]sample{}
	var order []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "BenchmarkReviews/") {
			continue
		}
		name := strings.TrimPrefix(f[0], "BenchmarkReviews/")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i] // the GOMAXPROCS suffix
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			continue
		}
		review, handler := name[:i], name[i+1:]
		var s sample
		for j := 2; j+1 < len(f); j += 2 {
			v, err := strconv.ParseFloat(f[j], 64)
			if err != nil {
				return nil, nil, fmt.Errorf("%q: %v", sc.Text(), err)
			}
			switch f[j+1] {
			case "ns/op":
				s.ns = v
			case "cpu-ns/op":
				s.cpu = v
			case "B/op":
				s.bytes = v
			case "allocs/op":
				s.allocs = v
			}
		}
		if runs[review] == nil {
			runs[review] = map[string][]sample{}
			order = append(order, review)
		}
		runs[review][handler] = append(runs[review][handler], s)
	}
	return runs, order, sc.Err()
}

// ratios are a/b of the first n runs, run by run.
func ratios(a, b []sample, n int, v func(sample) float64) []float64 {
	var out []float64
	for i := range n {
		if v(b[i]) > 0 {
			out = append(out, v(a[i])/v(b[i]))
		}
	}
	return out
}

func med(s []sample, v func(sample) float64) float64 {
	var xs []float64
	for _, x := range s {
		xs = append(xs, v(x))
	}
	return median(xs)
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

func orDash(xs []float64) string {
	if len(xs) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", median(xs))
}
