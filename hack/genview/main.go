// Command genview writes a large, realistic cluster view as YAML files, one per kind
// (storageclasses, images, pvcs, vms, pods), for `serve --cluster`, `check --cluster` and
// load tests. The objects come from package gen and depend only on the flags (seeded):
//
//	go run ./hack/genview -out DIR -pvcs 10000 -images 2000 -vms 2000 -pods 10000 -classes 200
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/hcistorage/storage-webhook/hack/genview/gen"
)

// maxFileBytes is the largest manifest file cluster.LoadFiles reads.
const maxFileBytes = 64 << 20

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "genview:", err)
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	cfg := gen.Full()
	fs := flag.NewFlagSet("genview", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "folder to write the YAML files to (created if missing)")
	fs.IntVar(&cfg.PVCs, "pvcs", cfg.PVCs, "PersistentVolumeClaims: golden PVCs of cdi images, VM disks, then data PVCs")
	fs.IntVar(&cfg.Images, "images", cfg.Images, "VirtualMachineImages")
	fs.IntVar(&cfg.VMs, "vms", cfg.VMs, "VirtualMachines")
	fs.IntVar(&cfg.Pods, "pods", cfg.Pods, "Pods: virt-launchers of running VMs, then workloads")
	fs.IntVar(&cfg.Classes, "classes", cfg.Classes, "StorageClasses, across every provider profile, one of them the default")
	fs.IntVar(&cfg.Namespaces, "namespaces", cfg.Namespaces, "namespaces to spread the namespaced objects over")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed: the same flags give the same files")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return fmt.Errorf("usage: genview -out DIR [-pvcs N] [-images N] [-vms N] [-pods N] [-classes N] [-namespaces N] [-seed N]")
	}
	start := time.Now()
	view, err := gen.Generate(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for _, f := range view.Files() {
		path := filepath.Join(*out, f.Name)
		n, err := writeFile(path, f.Objects)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %d objects, %d bytes\n", path, len(f.Objects), n)
		if n > maxFileBytes {
			fmt.Fprintf(stderr, "genview: warning: %s is larger than %d bytes, which cluster.LoadFiles refuses\n", path, maxFileBytes)
		}
	}
	fmt.Fprintf(stdout, "generated in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// writeFile writes one YAML document per object. Marshalling (sigs.k8s.io/yaml goes through
// JSON) takes most of the time, so objects are marshalled on every CPU, then written in order.
func writeFile(path string, objs []runtime.Object) (int64, error) {
	docs := make([][]byte, len(objs))
	errs := make([]error, len(objs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range goruntime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(objs); i = int(next.Add(1)) - 1 {
				docs[i], errs[i] = yaml.Marshal(objs[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var n int64
	for i, doc := range docs {
		if i > 0 {
			_, _ = w.WriteString("---\n")
			n += 4
		}
		_, _ = w.Write(doc)
		n += int64(len(doc))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	return n, f.Close()
}
