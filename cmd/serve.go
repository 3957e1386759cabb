package cmd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/audit"
	"github.com/hcistorage/storage-webhook/authz"
	"github.com/hcistorage/storage-webhook/certs"
	"github.com/hcistorage/storage-webhook/cluster"
	"github.com/hcistorage/storage-webhook/harvester"
	"github.com/hcistorage/storage-webhook/internal/logjson"
	"github.com/hcistorage/storage-webhook/metrics"
	"github.com/hcistorage/storage-webhook/providers"
	"github.com/hcistorage/storage-webhook/webhook"
)

type serveFlags struct {
	listen, metricsListen, probesListen, certFile, keyFile string
	providers, kubeconfig, harvesterVersion                string
	logFormat, logLevel                                    string
	privileged, clusterPaths                               stringList
	selfSigned, enableHTTP2, metricsSecure                 bool
	maxBody                                                int64
	tlsMinVersion, clientCAFile                            string
	shutdownDelay                                          time.Duration
	authzTimeout, authzCacheTTL                            time.Duration
	// started, when set, hears the bound addresses (tests listen on 127.0.0.1:0): the
	// webhook listener and the metrics listener. With --metrics-secure, probesStarted hears
	// the plain probes listener.
	started       func(webhook, metrics net.Addr)
	probesStarted func(probes net.Addr)
}

// Serve runs the HTTPS webhook server until SIGTERM or SIGINT.
func Serve(args []string, stderr io.Writer) error {
	f, err := parseServeFlags(args, stderr)
	if err != nil {
		return err
	}
	out := newLineBuffer(stderr)
	defer out.Flush()
	log, err := newLogger(f.logFormat, f.logLevel, out)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	flushCtx, stopFlushing := context.WithCancel(context.Background())
	defer stopFlushing()
	go out.flushEvery(flushCtx, logFlushInterval)
	return serve(ctx, f, log)
}

func parseServeFlags(args []string, stderr io.Writer) (*serveFlags, error) {
	fs := newFlagSet("serve", "serve [flags]", stderr)
	var f serveFlags
	fs.StringVar(&f.listen, "listen", ":8443", "HTTPS address of the webhooks")
	fs.StringVar(&f.metricsListen, "metrics-listen", ":8080", "address of /metrics (plain HTTP, also /healthz and /readyz; HTTPS with --metrics-secure)")
	fs.BoolVar(&f.metricsSecure, "metrics-secure", false, "serve /metrics and /audit on --metrics-listen over HTTPS (the serving certificate), only to callers the API server authenticates and authorizes (TokenReview, SubjectAccessReview); /healthz and /readyz move to --probes-listen")
	fs.StringVar(&f.probesListen, "probes-listen", ":8081", "plain HTTP address of /healthz and /readyz with --metrics-secure (unused without it: the probes stay on --metrics-listen)")
	fs.StringVar(&f.certFile, "tls-cert-file", "/etc/storage-webhook/tls/tls.crt", "serving certificate (PEM), re-read when it changes")
	fs.StringVar(&f.keyFile, "tls-key-file", "/etc/storage-webhook/tls/tls.key", "serving key (PEM), re-read when it changes")
	fs.BoolVar(&f.selfSigned, "self-signed", false, "serve a throwaway in-memory self-signed certificate for localhost instead of the files")
	fs.StringVar(&f.providers, "providers", "", "provider profiles file (YAML), re-read when it changes; empty: the built-in table")
	fs.StringVar(&f.harvesterVersion, "harvester-version", "", "Harvester release whose behaviour the rules follow (v1.8 or v1.8.2), instead of the cluster's server-version Setting")
	fs.Var(&f.privileged, "privileged-user", "request user that may delete golden PVCs and image DataVolumes (repeatable; default: "+strings.Join(admit.DefaultPrivilegedUsers, ", ")+")")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster to watch; empty: in-cluster configuration")
	fs.Var(&f.clusterPaths, "cluster", "file or folder of objects to use as the cluster view instead of a Kubernetes connection (repeatable)")
	fs.StringVar(&f.logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warning or error")
	fs.Int64Var(&f.maxBody, "max-body-bytes", webhook.DefaultMaxBodyBytes, "largest request body accepted; larger ones get 413")
	fs.StringVar(&f.tlsMinVersion, "tls-min-version", "1.2", "lowest TLS version accepted: 1.2 or 1.3")
	fs.BoolVar(&f.enableHTTP2, "enable-http2", false, "offer HTTP/2 (off by default: HTTP/2 rapid reset, CVE-2023-44487)")
	fs.StringVar(&f.clientCAFile, "client-ca-file", "", "accept only clients with a certificate signed by this CA (PEM), e.g. the API server's")
	fs.DurationVar(&f.authzTimeout, "authorization-timeout", authz.DefaultTimeout, "longest wait for IMG-V6's SubjectAccessReview; past it the request is refused with a retryable 503")
	fs.DurationVar(&f.authzCacheTTL, "authorization-cache-ttl", authz.DefaultCacheTTL, "how long IMG-V6 remembers an answer per user and object (negative: not at all)")
	fs.DurationVar(&f.shutdownDelay, "shutdown-delay", 5*time.Second, "on SIGTERM, keep serving with /readyz failing this long (for endpoints to drop the pod), then finish in-flight requests and exit")
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if f.metricsSecure && len(f.clusterPaths) > 0 {
		return nil, usageError{fmt.Errorf("--metrics-secure needs an API server to authenticate scrapers, and --cluster reads files: drop one")}
	}
	if err := validPin(f.harvesterVersion); err != nil {
		return nil, err
	}
	return &f, nil
}

func newLogger(format, level string, out io.Writer) (*logrus.Logger, error) {
	log := logrus.New()
	log.SetOutput(out)
	switch format {
	case "json":
		log.SetFormatter(logjson.Formatter{}) // logrus.JSONFormatter's output, cheaper (internal/logjson)
	case "text":
		log.SetFormatter(&logrus.TextFormatter{DisableColors: true, FullTimestamp: true})
	default:
		return nil, usageError{fmt.Errorf("--log-format %q must be json or text", format)}
	}
	lvl, err := logrus.ParseLevel(level)
	if err != nil {
		return nil, usageError{fmt.Errorf("--log-level: %w", err)}
	}
	log.SetLevel(lvl)
	// certwatcher logs through controller-runtime's logger; without one it prints a warning
	// with a stack trace later.
	ctrllog.SetLogger(funcr.New(func(prefix, args string) {
		log.WithField("component", prefix).Info(args)
	}, funcr.Options{}))
	return log, nil
}

func privilegedSet(users []string) map[string]bool {
	if len(users) == 0 {
		users = admit.DefaultPrivilegedUsers
	}
	set := make(map[string]bool, len(users))
	for _, u := range users {
		set[u] = true
	}
	return set
}

// loadProviders returns the provider table: the built-in one, or a file that is re-read
// when it changes (a bad file at start-up is an error; later, the old table stays).
// reloaded (may be nil) hears of each file put in force, without blocking.
func loadProviders(path string, log logrus.FieldLogger, m *metrics.Metrics, reloaded chan<- struct{}) (*providers.Store, error) {
	if path == "" {
		return providers.NewStore(nil), nil
	}
	return providers.Load(path, webhook.Catalogue(), func(err error) {
		if err != nil {
			log.WithError(err).Error("providers file refused; the previous table stays in force")
			if m != nil {
				m.ProviderLoads.WithLabelValues("failure").Inc()
			}
			return
		}
		log.WithField("file", path).Info("providers file reloaded")
		if m != nil {
			m.ProviderLoads.WithLabelValues("success").Inc()
		}
		select {
		case reloaded <- struct{}{}:
		default: // one pending notice is enough
		}
	})
}

func serve(ctx context.Context, f *serveFlags, log *logrus.Logger) error {
	m := metrics.New()
	reloaded := make(chan struct{}, 1)
	prov, err := loadProviders(f.providers, log, m, reloaded)
	if err != nil {
		return err
	}
	exportRollout(m, prov)
	go logExpiries(ctx, prov, reloaded, log)
	go func() {
		if err := prov.Watch(ctx); err != nil {
			log.WithError(err).Error("cannot watch the providers file; it will not be re-read")
		}
	}()

	var view *cluster.Cache
	var cfg *rest.Config // nil for a file view
	var access admit.Access
	if len(f.clusterPaths) > 0 {
		files, err := cluster.LoadFiles(f.clusterPaths...)
		if err != nil {
			return err
		}
		view = files.Cache
		if access, err = authz.NewRBAC(files.Objects()); err != nil {
			return err
		}
	} else {
		if cfg, err = clientcmd.BuildConfigFromFlags("", f.kubeconfig); err != nil {
			return fmt.Errorf("kubeconfig: %w", err)
		}
		if view, err = cluster.StartInformers(ctx, cfg); err != nil {
			return err
		}
		kube, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return err
		}
		sar := authz.NewSubjectAccess(kube.AuthorizationV1().SubjectAccessReviews(), f.authzTimeout, f.authzCacheTTL)
		// Each answer's counter is looked up once here (which also exports every series
		// at 0 from the start), not per answer.
		counters := map[string][2]prometheus.Counter{}
		for _, result := range []string{"allowed", "denied", "error"} {
			counters[result] = [2]prometheus.Counter{m.AccessReviews.WithLabelValues(result, "false"), m.AccessReviews.WithLabelValues(result, "true")}
		}
		sar.Observe = func(result string, cached bool) {
			i := 0
			if cached {
				i = 1
			}
			counters[result][i].Inc()
		}
		access = sar
	}
	// The rules follow the Harvester of the view (its server-version Setting) unless a pin
	// names the release; the release in force is logged and exported once the caches have
	// synced, and again whenever it changes.
	prov.UseHarvester(view, f.harvesterVersion, func(h *providers.Harvester) {
		logHarvester(log, h)
		m.SetHarvesterRelease(h.Release.String(), h.Version, h.Source, []string{harvester.SettingCSIDriverConfig, harvester.SettingBackupTarget}, h.Problems)
	})
	view.OnSettingsChange(func() {
		if ok, _ := view.Synced(); ok {
			prov.Harvester()
		}
	})
	go reportSync(ctx, view, m, func() { prov.Harvester() })

	tlsConfig, err := serverTLS(ctx, f, log, m)
	if err != nil {
		return err
	}

	var shuttingDown atomic.Bool
	ready := func() bool { ok, _ := view.Synced(); return ok }
	env := &admit.Env{View: view, Providers: prov, Privileged: privilegedSet(f.privileged), Access: access}
	h := &webhook.Handler{Hooks: webhook.Hooks(env), MaxBodyBytes: f.maxBody, Ready: ready, Log: log, Metrics: m}
	live := audit.NewLive(audit.New(env), view, m.AuditFindings, m.AuditObjects, log)
	live.Start(ctx)
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "storage_webhook_audit_queue_length",
		Help: "Stored objects queued for audit (0 once the audit has caught up with every informer event).",
	}, func() float64 { return float64(live.Pending()) }))
	guard, err := newAPIGuard(cfg)
	if err != nil {
		return err
	}
	auditHandler := audit.Handler(live, ready)
	metricsHandler := promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})

	probes := http.NewServeMux()
	probes.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	probes.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, state := view.Synced()
		if shuttingDown.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		if !ok {
			http.Error(w, fmt.Sprintf("watch caches not synced: %v", state), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})

	// Without --metrics-secure, the metrics listener is plain HTTP and serves /metrics and
	// the probes, as it always has. With it, /metrics (and /audit, so Prometheus-side
	// tooling reaches it without the webhook port's client certificate) are served over
	// HTTPS with the webhooks' serving certificate, behind the same TokenReview and
	// SubjectAccessReview as /audit; the probes move to their own plain listener, because
	// the kubelet's probes carry no token and must not depend on the API server answering.
	metricsMux := probes
	if f.metricsSecure {
		metricsMux = http.NewServeMux()
		metricsMux.Handle("/metrics", guard.wrap(metricsHandler, "storage-webhook-metrics-reader"))
		metricsMux.Handle("/audit", guard.wrap(auditHandler, "storage-webhook-metrics-reader"))
	} else {
		probes.Handle("/metrics", metricsHandler)
	}

	webhookLn, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	metricsLn, err := net.Listen("tcp", f.metricsListen)
	if err != nil {
		webhookLn.Close()
		return err
	}
	var probesLn net.Listener
	if f.metricsSecure {
		if probesLn, err = net.Listen("tcp", f.probesListen); err != nil {
			webhookLn.Close()
			metricsLn.Close()
			return err
		}
	}
	// The API server's webhook timeout is at most 30 s; nothing legitimate is slower.
	webhooks := http.NewServeMux()
	webhooks.Handle("/", h.Mux())
	webhooks.Handle("/audit", guard.wrap(auditHandler, "storage-webhook-audit-reader"))
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// While shutting down, each response closes its connection, so clients stop
			// holding keep-alive connections that Shutdown would close under their next
			// request. (Server.SetKeepAlivesEnabled(false) would close idle ones at once,
			// racing a client that is just writing on one.)
			if shuttingDown.Load() {
				w.Header().Set("Connection", "close")
			}
			webhooks.ServeHTTP(w, r)
		}),
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog: newStdLogger(log),
	}
	if !f.enableHTTP2 {
		// A non-nil empty map turns net/http's automatic HTTP/2 off.
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	msrv := &http.Server{Handler: metricsMux, ReadHeaderTimeout: 10 * time.Second}
	var psrv *http.Server
	errc := make(chan error, 3)
	go func() { errc <- srv.ServeTLS(webhookLn, "", "") }()
	fields := logrus.Fields{"webhooks": "https://" + webhookLn.Addr().String()}
	if f.metricsSecure {
		// The webhooks' certificate, without the client-certificate requirement
		// (--client-ca-file is for the API server; Prometheus presents a bearer token).
		mcfg := tlsConfig.Clone()
		mcfg.ClientAuth, mcfg.ClientCAs = tls.NoClientCert, nil
		msrv.TLSConfig, msrv.ErrorLog = mcfg, newStdLogger(log)
		msrv.ReadTimeout, msrv.WriteTimeout, msrv.IdleTimeout = 30*time.Second, 30*time.Second, 120*time.Second
		if !f.enableHTTP2 {
			msrv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
		}
		psrv = &http.Server{Handler: probes, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- msrv.ServeTLS(metricsLn, "", "") }()
		go func() { errc <- psrv.Serve(probesLn) }()
		fields["metrics"] = "https://" + metricsLn.Addr().String()
		fields["probes"] = "http://" + probesLn.Addr().String()
	} else {
		go func() { errc <- msrv.Serve(metricsLn) }()
		fields["probes"] = "http://" + metricsLn.Addr().String()
	}
	log.WithFields(fields).Info("serving")
	if f.started != nil {
		f.started(webhookLn.Addr(), metricsLn.Addr())
	}
	if f.probesStarted != nil && probesLn != nil {
		f.probesStarted(probesLn.Addr())
	}
	if f.selfSigned {
		log.Info(fmt.Sprintf("try: curl -sk -H 'Content-Type: application/json' --data-binary @examples/reviews/image-create.json https://%s/mutate/virtualmachineimages", webhookLn.Addr()))
	}

	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	// Readiness drops first, so the Service stops sending new requests here, while the
	// ones already routed are still answered; then in-flight requests finish.
	shuttingDown.Store(true)
	log.WithField("delay", f.shutdownDelay).Info("shutting down: readiness off, still serving")
	time.Sleep(f.shutdownDelay)
	log.Info("shutting down: finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	_ = msrv.Shutdown(sctx)
	if psrv != nil {
		_ = psrv.Shutdown(sctx)
	}
	return err
}

// serverTLS is the webhook listener's TLS: the serving certificate (re-read by certwatcher,
// or a throwaway self-signed one), the minimum version, ALPN, and the optional client CA.
func serverTLS(ctx context.Context, f *serveFlags, log logrus.FieldLogger, m *metrics.Metrics) (*tls.Config, error) {
	cfg := &tls.Config{NextProtos: []string{"http/1.1"}}
	switch f.tlsMinVersion {
	case "1.2":
		cfg.MinVersion = tls.VersionTLS12
	case "1.3":
		cfg.MinVersion = tls.VersionTLS13
	default:
		return nil, usageError{fmt.Errorf("--tls-min-version %q must be 1.2 or 1.3", f.tlsMinVersion)}
	}
	if f.enableHTTP2 {
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	if f.clientCAFile != "" {
		pem, err := os.ReadFile(f.clientCAFile)
		if err != nil {
			return nil, fmt.Errorf("--client-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--client-ca-file %s holds no PEM certificate", f.clientCAFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	if f.selfSigned {
		cert, err := certs.SelfSigned([]string{"localhost", "127.0.0.1", "::1"}, 24*time.Hour)
		if err != nil {
			return nil, err
		}
		_ = m.SetServingCertificate(cert)
		cfg.Certificates = []tls.Certificate{cert}
		return cfg, nil
	}
	w, err := certwatcher.New(f.certFile, f.keyFile)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	// Called at once with the loaded certificate, then on every reload.
	w.RegisterCallback(func(c tls.Certificate) {
		if err := m.SetServingCertificate(c); err != nil {
			log.WithError(err).Warn("serving certificate: cannot read its expiry")
		}
	})
	go func() {
		if err := w.Start(ctx); err != nil {
			log.WithError(err).Error("certificate watcher stopped")
		}
	}()
	cfg.GetCertificate = w.GetCertificate
	return cfg, nil
}

// logHarvester logs the Harvester release in force, where it came from, and what was
// assumed about it or its Settings.
func logHarvester(log logrus.FieldLogger, h *providers.Harvester) {
	log.WithFields(logrus.Fields{"release": h.Release.String(), "version": h.Version, "source": h.Source}).Info("Harvester release in force: " + h.String())
	for _, n := range harvesterNotes(h) {
		log.Warn(n)
	}
}

// reportSync keeps the cache-synced gauge current until every cache has synced, then calls
// synced once.
func reportSync(ctx context.Context, view *cluster.Cache, m *metrics.Metrics, synced func()) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		all, state := view.Synced()
		for name, ok := range state {
			v := 0.0
			if ok {
				v = 1
			}
			m.CacheSynced.WithLabelValues(name).Set(v)
		}
		if all {
			synced()
			// The initial lists are garbage now; hand that memory back to the OS once,
			// so RSS reflects the caches rather than the peak of filling them.
			debug.FreeOSMemory()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func newStdLogger(log *logrus.Logger) *stdlog.Logger {
	return stdlog.New(log.WriterLevel(logrus.WarnLevel), "", 0)
}
