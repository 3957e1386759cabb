// Package cmd holds the storage-webhook subcommands (SPEC §7).
package cmd

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/providers"
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
		err = Rules(args[1:], stdout, stderr)
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
  rules     print every rule: ID, resource, webhook, operations, what it does; with
            --providers, each rule's action, overrides and exceptions under that file
  version   print version, commit and Go version

"storage-webhook COMMAND -h" lists a command's flags.`

// viewSource is where check, profiles and audit read the cluster from: --cluster files or a
// live cluster (--kubeconfig, read-only), the provider table (--providers) and the
// Harvester release the rules follow (--harvester-version, else the view's Setting).
type viewSource struct {
	clusterPaths          stringList
	kubeconfig, providers string
	harvesterVersion      string
	// stderr hears what was assumed about the Harvester in force (harvesterNotes).
	stderr io.Writer
}

// register adds the four flags; clusterHelp and kubeconfigHelp say what each reads.
func (v *viewSource) register(fs *flag.FlagSet, clusterHelp, kubeconfigHelp string) {
	fs.Var(&v.clusterPaths, "cluster", clusterHelp+" (repeatable)")
	fs.StringVar(&v.kubeconfig, "kubeconfig", "", kubeconfigHelp+" instead of --cluster files")
	registerConfig(fs, &v.providers, &v.harvesterVersion)
	v.stderr = fs.Output()
}

// registerConfig adds --providers and --harvester-version, which every command that runs
// the rules takes.
func registerConfig(fs *flag.FlagSet, providersFile, harvesterVersion *string) {
	fs.StringVar(providersFile, "providers", "", "provider profiles file; empty: the built-in table")
	fs.StringVar(harvesterVersion, "harvester-version", "", "Harvester release whose behaviour the rules follow (v1.8 or v1.8.2); empty: the view's server-version Setting")
}

// validate refuses both sources at once and, when required, neither, and a pinned version
// that is not one.
func (v *viewSource) validate(required bool) error {
	switch {
	case v.kubeconfig != "" && len(v.clusterPaths) > 0:
		return usageError{fmt.Errorf("--kubeconfig and --cluster are alternatives: give one")}
	case required && v.kubeconfig == "" && len(v.clusterPaths) == 0:
		return usageError{fmt.Errorf("give --cluster PATH or --kubeconfig FILE")}
	}
	return validPin(v.harvesterVersion)
}

// validPin refuses a --harvester-version that is not a version.
func validPin(v string) error {
	if v == "" {
		return nil
	}
	if err := providers.ValidPin(v); err != nil {
		return usageError{fmt.Errorf("--harvester-version: %w", err)}
	}
	return nil
}

// env is the rules' environment over the source: watch caches of a live cluster, or files.
func (v *viewSource) env(privileged []string) (*admit.Env, oldObjects, error) {
	if v.kubeconfig != "" {
		return liveEnv(v.kubeconfig, v.providers, v.harvesterVersion, privileged, v.stderr)
	}
	env, files, err := offlineEnv(v.clusterPaths, v.providers, v.harvesterVersion, privileged, v.stderr)
	if err != nil {
		return nil, nil, err
	}
	return env, fileOldObjects(files), nil
}

// harvesterNotes are what was assumed about the Harvester in force: how its version was
// read, and each Setting whose value is not in force.
func harvesterNotes(h *providers.Harvester) []string {
	var out []string
	if h.Note != "" {
		out = append(out, h.Note)
	}
	return append(out, h.ProblemsText()...)
}

// configStore is the configuration of an offline command (check, review, audit,
// profiles): the providers file and the Harvester of the view, read once; what was assumed
// about the Harvester goes to stderr as warnings.
func configStore(file *providers.File, view providers.SettingsSource, pin string, stderr io.Writer) *providers.Store {
	store := providers.NewStore(file)
	store.UseHarvester(view, pin, func(h *providers.Harvester) {
		for _, n := range harvesterNotes(h) {
			fmt.Fprintln(stderr, "warning: "+n)
		}
	})
	return store
}
