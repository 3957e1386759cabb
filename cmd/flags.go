// Package cmd holds the storage-webhook subcommands (SPEC §7).
package cmd

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hcistorage/storage-webhook/webhook"

	"github.com/hcistorage/storage-webhook/admit"
)

// EnvPrefix prefixes the environment variable of every flag: --metrics-listen reads
// STORAGE_WEBHOOK_METRICS_LISTEN. A flag given on the command line wins.
const EnvPrefix = "STORAGE_WEBHOOK_"

// stringList is a repeatable flag; from the environment it takes a comma-separated list.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// EnvName is the environment variable of a flag.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse parses args, then fills every flag not given from its environment variable.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := os.LookupEnv(EnvName(f.Name))
		if !ok || given[f.Name] || err != nil {
			return
		}
		values := []string{v}
		if _, list := f.Value.(*stringList); list {
			values = strings.Split(v, ",")
		}
		for _, one := range values {
			if e := f.Value.Set(strings.TrimSpace(one)); e != nil {
				err = fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, e)
			}
		}
	})
	return err
}

// newFlagSet makes a flag set whose usage names the command and the environment variables.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: storage-webhook %s\n\nEvery flag also reads %s<FLAG>, e.g. %s.\n\n", synopsis, EnvPrefix, EnvName("log-level"))
		fs.PrintDefaults()
	}
	return fs
}

// usageError is an input or usage error: exit status 2.
type usageError struct{ error }

// Main runs a subcommand and returns the process exit status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, topUsage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = Serve(args[1:], stderr)
	case "check":
		var denied bool
		denied, err = Check(args[1:], stdin, stdout, stderr)
		if err == nil && denied {
			return 1
		}
	case "review":
		err = Review(args[1:], stdin, stdout, stderr)
	case "certs":
		err = Certs(args[1:], stdout, stderr)
	case "profiles":
		err = Profiles(args[1:], stdout, stderr)
	case "audit":
		var found bool
		found, err = Audit(args[1:], stdout, stderr)
		if err == nil && found {
			return 1
		}
	case "rules":
		fmt.Fprint(stdout, webhook.RulesTable())
	case "version":
		fmt.Fprintln(stdout, VersionString())
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, topUsage)
	default:
		fmt.Fprintf(stderr, "unknown command %q\n%s\n", args[0], topUsage)
		return 2
	}
	if err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		fmt.Fprintln(stderr, "storage-webhook "+args[0]+": "+err.Error())
		return 2
	}
	return 0
}

const topUsage = `usage: storage-webhook COMMAND [flags]

commands:
  serve     the HTTPS admission webhook server
  check     evaluate manifests offline, as the API server would admit them
  review    answer one AdmissionReview JSON exactly as the server would
  certs     make a CA and serving certificate, print the Secret and caBundle
  profiles  list StorageClasses: provider profile, per-class CDI settings, effective settings
  audit     evaluate the stored objects (files or a live cluster) against every rule that can hold for them
  rules     print every rule: ID, resource, webhook, operations, what it does
  version   print version, commit and Go version

"storage-webhook COMMAND -h" lists a command's flags.`

// viewSource is where check, profiles and audit read the cluster from: --cluster files or a
// live cluster (--kubeconfig, read-only), and the provider table (--providers).
type viewSource struct {
	clusterPaths          stringList
	kubeconfig, providers string
}

// register adds the three flags; clusterHelp and kubeconfigHelp say what each reads.
func (v *viewSource) register(fs *flag.FlagSet, clusterHelp, kubeconfigHelp string) {
	fs.Var(&v.clusterPaths, "cluster", clusterHelp+" (repeatable)")
	fs.StringVar(&v.kubeconfig, "kubeconfig", "", kubeconfigHelp+" instead of --cluster files")
	fs.StringVar(&v.providers, "providers", "", "provider profiles file; empty: the built-in table")
}

// validate refuses both sources at once and, when required, neither.
func (v *viewSource) validate(required bool) error {
	switch {
	case v.kubeconfig != "" && len(v.clusterPaths) > 0:
		return usageError{fmt.Errorf("--kubeconfig and --cluster are alternatives: give one")}
	case required && v.kubeconfig == "" && len(v.clusterPaths) == 0:
		return usageError{fmt.Errorf("give --cluster PATH or --kubeconfig FILE")}
	}
	return nil
}

// env is the rules' environment over the source: watch caches of a live cluster, or files.
func (v *viewSource) env(privileged []string) (*admit.Env, oldObjects, error) {
	if v.kubeconfig != "" {
		return liveEnv(v.kubeconfig, v.providers, privileged)
	}
	env, files, err := offlineEnv(v.clusterPaths, v.providers, privileged)
	if err != nil {
		return nil, nil, err
	}
	return env, fileOldObjects(files), nil
}
