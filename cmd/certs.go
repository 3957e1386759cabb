package cmd

import (
	"fmt"
	"io"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/hcistorage/storage-webhook/certs"
)

// Certs makes a CA and a serving certificate for the webhook's Service and prints the TLS
// Secret (YAML) and the caBundle, or writes the PEM files with --out.
func Certs(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("certs", "certs [--service NAME] [--namespace NS] [--secret NAME] [--validity DURATION] [--out DIR]", stderr)
	var o certs.Options
	var secret, out string
	fs.StringVar(&o.Service, "service", "storage-webhook", "name of the webhook's Service")
	fs.StringVar(&o.Namespace, "namespace", "storage-webhook", "namespace of the Service and Secret")
	fs.StringVar(&secret, "secret", "storage-webhook-tls", "name of the Secret to print")
	fs.DurationVar(&o.Validity, "validity", 365*24*time.Hour, "validity of the CA and certificate")
	fs.StringVar(&out, "out", "", "write tls.crt, tls.key and ca.crt into this folder instead of printing the Secret")
	if err := parse(fs, args); err != nil {
		return err
	}
	b, err := certs.Generate(o)
	if err != nil {
		return usageError{err}
	}
	if out != "" {
		if err := certs.WriteFiles(b, out); err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, b.CABundle())
		return err
	}
	y, err := yaml.Marshal(b.Secret(secret, o.Namespace))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s---\n# caBundle for the webhook configurations:\n# %s\n", y, b.CABundle())
	return err
}
