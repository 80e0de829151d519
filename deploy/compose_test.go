package deploy_test

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// The services of docker-compose.yml, by name.
const (
	postgresService   = "postgresql"
	schemaJob         = "temporal-schema"
	namespaceJob      = "temporal-namespace"
	temporalService   = "temporal"
	temporalUIService = "temporal-ui"
	apiService        = "jobgate-api"
	workerService     = "jobgate-worker"
	nginxService      = "nginx"
)

// probePath is where the Dockerfile puts jobgate-probe, the health check of
// an image with no shell.
const probePath = "/jobgate-probe"

func TestComposeStack(t *testing.T) {
	t.Parallel()
	root := mustRepoRoot(t)
	p := mustLoadCompose(t, root, nil)
	jobgateEnv := mustJobgateEnv(t, root)

	t.Run("the six services exist", func(t *testing.T) {
		t.Parallel()
		for _, name := range []string{postgresService, temporalService, temporalUIService, apiService, workerService, nginxService} {
			_, ok := p.Services[name]
			require.True(t, ok, "docker-compose.yml has no service %q (it has %v)", name, p.ServiceNames())
		}
	})

	t.Run("every service has a healthcheck", func(t *testing.T) {
		t.Parallel()
		for name, s := range p.Services {
			if name == schemaJob || name == namespaceJob {
				continue // one-shot jobs: what waits for them waits for their successful exit
			}
			hc := s.HealthCheck
			require.NotNil(t, hc, "service %q has no healthcheck: depends_on service_healthy and `docker compose up --wait` need one", name)
			require.False(t, hc.Disable, "service %q disables its healthcheck", name)
			require.NotEmpty(t, hc.Test, "service %q has a healthcheck without a test", name)
			require.Contains(t, []string{"CMD", "CMD-SHELL"}, hc.Test[0], "service %q: healthcheck test %v must start with CMD or CMD-SHELL", name, hc.Test)
		}
	})

	t.Run("start-up order waits for health", func(t *testing.T) {
		t.Parallel()
		for _, dep := range []struct{ service, on string }{
			{apiService, temporalService},
			{workerService, temporalService},
			{temporalService, postgresService},
			{temporalUIService, temporalService},
			{nginxService, apiService},
		} {
			d, ok := p.Services[dep.service].DependsOn[dep.on]
			require.True(t, ok, "service %q must depend on %q", dep.service, dep.on)
			require.Equal(t, types.ServiceConditionHealthy, d.Condition, "service %q must wait until %q is healthy, not just started", dep.service, dep.on)
		}
	})

	t.Run("jobgate services build the root Dockerfile and run their role", func(t *testing.T) {
		t.Parallel()
		for name, role := range map[string]string{apiService: "api", workerService: "worker"} {
			s := p.Services[name]
			require.NotNil(t, s.Build, "service %q must build the jobgate image", name)
			require.Equal(t, root, filepath.Clean(s.Build.Context), "service %q must build from the repository root", name)
			require.Equal(t, filepath.Join(root, "Dockerfile"), filepath.Join(s.Build.Context, s.Build.Dockerfile), "service %q must build the Dockerfile at the repository root", name)
			require.NotNil(t, s.Deploy, "service %q needs deploy.replicas", name)
			require.NotNil(t, s.Deploy.Replicas, "service %q needs deploy.replicas", name)
			require.Equal(t, 2, *s.Deploy.Replicas, "service %q must run 2 replicas", name)
			require.Equal(t, role, mustEnv(t, s, "JOBGATE_ROLE"), "service %q: JOBGATE_ROLE", name)
		}
	})

	t.Run("jobgate services reach Temporal and share its namespace", func(t *testing.T) {
		t.Parallel()
		wantNamespace := mustEnv(t, p.Services[namespaceJob], "NAMESPACE")
		for _, name := range []string{apiService, workerService} {
			s := p.Services[name]
			addr := mustEnv(t, s, "JOBGATE_TEMPORAL_ADDRESS")
			requireServiceAddr(t, p, addr, temporalService, "service "+strconv.Quote(name)+": JOBGATE_TEMPORAL_ADDRESS")
			require.Equal(t, wantNamespace, mustEnv(t, s, "JOBGATE_TEMPORAL_NAMESPACE"), "service %q must use the namespace the temporal service creates", name)
		}
		requireServiceAddr(t, p, mustEnv(t, p.Services[temporalUIService], "TEMPORAL_ADDRESS"), temporalService, "service \"temporal-ui\": TEMPORAL_ADDRESS")
		// The jobgate services start only once the namespace job, which
		// runs once Temporal is healthy, has created their namespace.
		for _, name := range []string{apiService, workerService} {
			d, ok := p.Services[name].DependsOn[namespaceJob]
			require.True(t, ok, "service %q must depend on %q", name, namespaceJob)
			require.Equal(t, types.ServiceConditionCompletedSuccessfully, d.Condition, "service %q must wait until %q has succeeded", name, namespaceJob)
		}
		d, ok := p.Services[namespaceJob].DependsOn[temporalService]
		require.True(t, ok && d.Condition == types.ServiceConditionHealthy, "%q must wait until temporal is healthy", namespaceJob)
		requireServiceAddr(t, p, mustEnv(t, p.Services[namespaceJob], "TEMPORAL_ADDRESS"), temporalService, "service \"temporal-namespace\": TEMPORAL_ADDRESS")
		requireBind(t, p.Services[namespaceJob], filepath.Join(mustRepoRoot(t), "deploy", "temporal", "setup-namespace.sh"), "/setup-namespace.sh")
		require.Equal(t, []string{"sh", "/setup-namespace.sh"}, []string(p.Services[namespaceJob].Entrypoint), "%q must run deploy/temporal/setup-namespace.sh", namespaceJob)
		require.Equal(t,
			mustEnv(t, p.Services[apiService], "JOBGATE_TEMPORAL_ADDRESS"),
			mustEnv(t, p.Services[workerService], "JOBGATE_TEMPORAL_ADDRESS"),
			"the API and the workers must talk to the same Temporal")
	})

	t.Run("the namespace keeps jobs past their result TTL", func(t *testing.T) {
		t.Parallel()
		ttl := jobgateEnv["JOBGATE_RESULT_TTL"]
		if v, ok := env(p.Services[apiService], "JOBGATE_RESULT_TTL"); ok {
			ttl = v
		}
		resultTTL, err := time.ParseDuration(ttl)
		require.NoError(t, err, "JOBGATE_RESULT_TTL %q", ttl)
		retention := mustEnv(t, p.Services[namespaceJob], "NAMESPACE_RETENTION")
		d, err := time.ParseDuration(retention)
		require.NoError(t, err, "temporal-namespace: NAMESPACE_RETENTION %q", retention)
		require.GreaterOrEqual(t, d, resultTTL+24*time.Hour, "temporal-namespace: NAMESPACE_RETENTION must be JOBGATE_RESULT_TTL (%s) plus a day, so expired jobs answer 410 before Temporal forgets them (docs/production.md)", resultTTL)
	})

	t.Run("temporal uses the postgresql service", func(t *testing.T) {
		t.Parallel()
		temporal, pg := p.Services[temporalService], p.Services[postgresService]
		require.Equal(t, postgresService, mustEnv(t, temporal, "POSTGRES_SEEDS"), "temporal: POSTGRES_SEEDS must name the postgresql service")
		require.Equal(t, mustEnv(t, pg, "POSTGRES_USER"), mustEnv(t, temporal, "POSTGRES_USER"), "temporal and postgresql must agree on the database user")
		require.Equal(t, mustEnv(t, pg, "POSTGRES_PASSWORD"), mustEnv(t, temporal, "POSTGRES_PWD"), "temporal's POSTGRES_PWD must be postgresql's POSTGRES_PASSWORD")
		require.Contains(t, []string{"postgres12", "postgres12_pgx"}, mustEnv(t, temporal, "DB"), "temporal: DB must select a PostgreSQL plugin")
	})

	t.Run("temporal is the plain server image, its schema set up by the schema job", func(t *testing.T) {
		t.Parallel()
		temporal, job := p.Services[temporalService], p.Services[schemaJob]
		require.True(t, strings.HasPrefix(temporal.Image, "temporalio/server:"), "temporal must run temporalio/server (auto-setup is deprecated and not for production), not %q", temporal.Image)
		require.True(t, strings.HasPrefix(job.Image, "temporalio/admin-tools:"), "%q must run temporalio/admin-tools (temporal-sql-tool), not %q", schemaJob, job.Image)
		d, ok := temporal.DependsOn[schemaJob]
		require.True(t, ok && d.Condition == types.ServiceConditionCompletedSuccessfully, "temporal must start only once %q has succeeded", schemaJob)
		d, ok = job.DependsOn[postgresService]
		require.True(t, ok && d.Condition == types.ServiceConditionHealthy, "%q must wait until postgresql is healthy", schemaJob)
		for _, key := range []string{"POSTGRES_SEEDS", "DB_PORT", "POSTGRES_USER", "POSTGRES_PWD", "DBNAME", "VISIBILITY_DBNAME"} {
			require.Equal(t, mustEnv(t, temporal, key), mustEnv(t, job, key), "%s: the schema job must set up the databases the server uses", key)
		}
		requireBind(t, job, filepath.Join(root, "deploy", "temporal", "setup-schema.sh"), "/setup-schema.sh")
		require.Equal(t, []string{"sh", "/setup-schema.sh"}, []string(job.Entrypoint), "%q must run deploy/temporal/setup-schema.sh", schemaJob)
		script, err := os.ReadFile(filepath.Join(root, "deploy", "temporal", "setup-schema.sh"))
		require.NoError(t, err)
		for _, step := range []string{"create-database", "setup-schema --version 0.0", "update-schema --schema-name \"postgresql/v12/$schema\""} {
			require.Contains(t, string(script), step, "setup-schema.sh must run %s (devserver's TestComposeSchemaScript runs it for real)", step)
		}
	})

	t.Run("Temporal and its Web UI are published on loopback only", func(t *testing.T) {
		t.Parallel()
		for _, name := range []string{temporalService, temporalUIService} {
			for _, port := range p.Services[name].Ports {
				if port.Published != "" {
					require.Equal(t, "127.0.0.1", port.HostIP, "service %q publishes %s on all interfaces; they have no authentication: bind 127.0.0.1", name, port.Published)
				}
			}
		}
	})

	t.Run("jobgate services carry the Temporal TLS variables", func(t *testing.T) {
		t.Parallel()
		for _, name := range []string{apiService, workerService} {
			for _, key := range []string{"JOBGATE_TEMPORAL_TLS_CA", "JOBGATE_TEMPORAL_TLS_CERT", "JOBGATE_TEMPORAL_TLS_KEY", "JOBGATE_TEMPORAL_TLS_SERVER_NAME", "JOBGATE_TEMPORAL_API_KEY"} {
				_, ok := p.Services[name].Environment[key]
				require.True(t, ok, "service %q should show %s (empty: plain text to the compose Temporal)", name, key)
				require.Contains(t, jobgateEnv, key, "%s must be a variable app/config.go reads", key)
			}
		}
	})

	t.Run("only nginx, the Web UI and Temporal publish host ports", func(t *testing.T) {
		t.Parallel()
		mayPublish := []string{nginxService, temporalUIService, temporalService}
		nginxPublishes8080 := false
		for name, s := range p.Services {
			for _, port := range s.Ports {
				if port.Published == "" {
					continue
				}
				require.Contains(t, mayPublish, name, "service %q publishes host port %s; only %v may (replicas cannot share a host port, the database stays private)", name, port.Published, mayPublish)
				if name == nginxService && port.Published == "8080" && port.Target == 8080 {
					nginxPublishes8080 = true
				}
			}
		}
		require.True(t, nginxPublishes8080, "nginx must publish 8080:8080, the API's address on the host")
		require.Equal(t, "http://localhost:8080", mustEnv(t, p.Services[apiService], "JOBGATE_PUBLIC_URL"), "JOBGATE_PUBLIC_URL must default to the address nginx publishes")
	})

	t.Run("jobgate healthchecks probe their own readyz with jobgate-probe", func(t *testing.T) {
		t.Parallel()
		for _, name := range []string{apiService, workerService} {
			s := p.Services[name]
			test := s.HealthCheck.Test
			require.Len(t, test, 3, "service %q: healthcheck must be [CMD, %s, URL] (the image has no shell), got %v", name, probePath, test)
			require.Equal(t, "CMD", test[0], "service %q: the image has no shell, so the healthcheck must be CMD, not CMD-SHELL", name)
			require.Equal(t, probePath, test[1], "service %q: healthcheck must run %s, the probe the Dockerfile installs", name, probePath)
			u, err := url.Parse(test[2])
			require.NoError(t, err, "service %q: healthcheck URL %q", name, test[2])
			require.Equal(t, "/readyz", u.Path, "service %q: healthcheck must probe /readyz", name)
			require.Equal(t, httpPort(t, s, jobgateEnv), u.Port(), "service %q: healthcheck must probe the port JOBGATE_HTTP_ADDR listens on", name)
		}
	})

	t.Run("every JOBGATE_ variable is one the binary reads", func(t *testing.T) {
		t.Parallel()
		for name, s := range p.Services {
			for key := range s.Environment {
				if strings.HasPrefix(key, "JOBGATE_") {
					_, ok := jobgateEnv[key]
					require.True(t, ok, "service %q sets %s, which app/config.go does not read (typo?)", name, key)
				}
			}
		}
		// Interpolated variables and comments count too.
		raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
		require.NoError(t, err, "read docker-compose.yml")
		for _, key := range regexp.MustCompile(`JOBGATE_[A-Z0-9_]+`).FindAllString(string(raw), -1) {
			_, ok := jobgateEnv[key]
			require.True(t, ok, "docker-compose.yml mentions %s, which app/config.go does not read", key)
		}
	})

	t.Run("workers get time to finish their activities", func(t *testing.T) {
		t.Parallel()
		s := p.Services[workerService]
		shutdown := jobgateEnv["JOBGATE_SHUTDOWN_TIMEOUT"]
		if v, ok := env(s, "JOBGATE_SHUTDOWN_TIMEOUT"); ok {
			shutdown = v
		}
		timeout, err := time.ParseDuration(shutdown)
		require.NoError(t, err, "JOBGATE_SHUTDOWN_TIMEOUT %q", shutdown)
		require.NotNil(t, s.StopGracePeriod, "service %q needs stop_grace_period: Docker kills after 10s, before the worker's %s shutdown", workerService, timeout)
		require.Greater(t, time.Duration(*s.StopGracePeriod), timeout, "service %q: stop_grace_period must exceed JOBGATE_SHUTDOWN_TIMEOUT (%s) so SIGKILL never cuts a graceful shutdown", workerService, timeout)
	})

	t.Run("mounted files exist", func(t *testing.T) {
		t.Parallel()
		for name, s := range p.Services {
			for _, v := range s.Volumes {
				if v.Type != types.VolumeTypeBind {
					continue
				}
				_, err := os.Stat(v.Source)
				require.NoError(t, err, "service %q mounts %s, which does not exist", name, v.Source)
			}
		}
		requireBind(t, p.Services[nginxService], filepath.Join(root, "deploy", "nginx", "nginx.conf"), "/etc/nginx/nginx.conf")
		temporal := p.Services[temporalService]
		dynamicConfig := mustEnv(t, temporal, "DYNAMIC_CONFIG_FILE_PATH")
		require.True(t, filepath.IsAbs(dynamicConfig), "temporal: DYNAMIC_CONFIG_FILE_PATH %q should be absolute, not relative to the image's working directory", dynamicConfig)
		requireBind(t, temporal, filepath.Join(root, "deploy", "temporal", "dynamicconfig.yaml"), dynamicConfig)
	})

	t.Run("the Dockerfile builds what the services run", func(t *testing.T) {
		t.Parallel()
		df := mustDockerfile(t, filepath.Join(root, "Dockerfile"))
		requireDockerfileGoVersion(t, df, root)
		final := df.finalStage()

		jobgateOut := df.buildOutput(t, "./cmd/jobgate")
		probeOut := df.buildOutput(t, "./cmd/jobgate-probe")
		require.True(t, final.copies(jobgateOut, "/jobgate"), "the final stage must COPY --from the build stage %s to /jobgate", jobgateOut)
		require.True(t, final.copies(probeOut, probePath), "the final stage must COPY --from the build stage %s to %s", probeOut, probePath)
		require.Equal(t, []string{`["/jobgate"]`}, final.args("ENTRYPOINT"), "the image's ENTRYPOINT must be the jobgate binary")
		require.Contains(t, final.args("EXPOSE"), "8080", "the image must EXPOSE 8080, jobgate's default JOBGATE_HTTP_ADDR")
		users := final.args("USER")
		require.NotEmpty(t, users, "the final stage must set a USER")
		user := strings.SplitN(users[len(users)-1], ":", 2)[0]
		require.NotContains(t, []string{"root", "0"}, user, "the image must not run as root")

		hc := final.args("HEALTHCHECK")
		require.Len(t, hc, 1, "the image should declare one HEALTHCHECK for `docker run`")
		require.Contains(t, hc[0], `CMD ["`+probePath+`"`, "the image's HEALTHCHECK must run %s, like the compose healthchecks", probePath)
	})
}

func TestComposeInterpolatesSecrets(t *testing.T) {
	t.Parallel()
	root := mustRepoRoot(t)
	p := mustLoadCompose(t, root, []string{"POSTGRES_PASSWORD=s3cret", "JOBGATE_PUBLIC_URL=https://jobs.example.com"})

	require.Equal(t, "s3cret", mustEnv(t, p.Services[postgresService], "POSTGRES_PASSWORD"), "postgresql must take POSTGRES_PASSWORD from the environment")
	require.Equal(t, "s3cret", mustEnv(t, p.Services[temporalService], "POSTGRES_PWD"), "temporal must take POSTGRES_PASSWORD from the environment")
	require.Equal(t, "https://jobs.example.com", mustEnv(t, p.Services[apiService], "JOBGATE_PUBLIC_URL"), "jobgate-api must take JOBGATE_PUBLIC_URL from the environment")
}

func TestNginxConf(t *testing.T) {
	t.Parallel()
	root := mustRepoRoot(t)
	conf := mustNginxDirectives(t, filepath.Join(root, "deploy", "nginx", "nginx.conf"))

	passes := conf["proxy_pass"]
	require.Len(t, passes, 1, "nginx.conf should have one proxy_pass, to the API")
	target := passes[0]
	if strings.HasPrefix(target, "$") {
		// proxy_pass $var: the value comes from `set $var value`.
		var found bool
		for _, set := range conf["set"] {
			if name, value, ok := strings.Cut(set, " "); ok && name == target {
				target, found = strings.TrimSpace(value), true
			}
		}
		require.True(t, found, "nginx.conf: proxy_pass %s but no `set %s ...`", passes[0], passes[0])
		require.NotEmpty(t, conf["resolver"], "nginx.conf: proxy_pass through a variable needs a resolver")
		require.True(t, strings.HasPrefix(conf["resolver"][0], "127.0.0.11"), "nginx.conf: resolver must be Docker's DNS, 127.0.0.11, got %q", conf["resolver"][0])
	}
	u, err := url.Parse(target)
	require.NoError(t, err, "nginx.conf: proxy_pass target %q", target)
	require.Equal(t, "jobgate-api:8080", u.Host, "nginx.conf must proxy to the jobgate-api service on jobgate's port")
	require.Empty(t, u.Path, "nginx.conf: proxy_pass must not rewrite the request path")

	require.Equal(t, []string{"off"}, conf["proxy_buffering"], "nginx.conf must set proxy_buffering off, or Server-Sent Events arrive in bursts")
	require.Len(t, conf["proxy_read_timeout"], 1, "nginx.conf must set proxy_read_timeout for long-polls")
	readTimeout, err := time.ParseDuration(conf["proxy_read_timeout"][0])
	require.NoError(t, err, "nginx.conf: proxy_read_timeout %q", conf["proxy_read_timeout"][0])
	require.GreaterOrEqual(t, readTimeout, time.Minute, "nginx.conf: proxy_read_timeout must outlast a long-poll")
	// The longest Prefer: wait jobgate-api honours, where the binary has one.
	if maxWait, ok := mustJobgateEnv(t, root)["JOBGATE_MAX_WAIT"]; ok {
		if v, set := env(mustLoadCompose(t, root, nil).Services[apiService], "JOBGATE_MAX_WAIT"); set {
			maxWait = v
		}
		d, err := time.ParseDuration(maxWait)
		require.NoError(t, err, "JOBGATE_MAX_WAIT %q", maxWait)
		require.Greater(t, readTimeout, d, "nginx.conf: proxy_read_timeout must exceed JOBGATE_MAX_WAIT (%s), or nginx cuts the longest long-poll with a 504", d)
	}
	require.Contains(t, conf["listen"], "8080", "nginx.conf must listen on 8080, the port compose publishes")
	var forwarded []string
	for _, h := range conf["proxy_set_header"] {
		forwarded = append(forwarded, strings.Fields(h)[0])
	}
	require.Subset(t, forwarded, []string{"X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-For"}, "nginx.conf must pass the X-Forwarded-* headers")
}

func TestDynamicConfig(t *testing.T) {
	t.Parallel()
	root := mustRepoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "deploy", "temporal", "dynamicconfig.yaml"))
	require.NoError(t, err, "read the Temporal dynamic config")

	// Temporal's file format: key -> list of {value, constraints}.
	var cfg map[string][]struct {
		Value       any            `yaml:"value"`
		Constraints map[string]any `yaml:"constraints"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &cfg), "deploy/temporal/dynamicconfig.yaml is not Temporal's dynamic config format (key: [{value, constraints}])")
	for key, values := range cfg {
		require.NotEmpty(t, values, "dynamic config %s has no values", key)
	}
	_, forced := cfg["system.forceSearchAttributesCacheRefreshOnRead"]
	require.False(t, forced, "system.forceSearchAttributesCacheRefreshOnRead must not be set: with it Temporal reports a database outage "+
		"as NamespaceNotFound, which jobgate can only answer with 500 instead of 503")
	require.Len(t, cfg["matching.enableFairness"], 1, "matching.enableFairness must be set once")
	require.Equal(t, true, cfg["matching.enableFairness"][0].Value, "matching.enableFairness must be true: fair dispatch between tenants")
	// (devserver's TestDeployDynamicConfigLoads loads this file into a real
	// server and fails on any key it does not know.)
}

// mustRepoRoot returns the repository root, the parent of this package.
func mustRepoRoot(tb testing.TB) string {
	tb.Helper()
	root, err := filepath.Abs("..")
	require.NoError(tb, err, "find the repository root")
	_, err = os.Stat(filepath.Join(root, "go.mod"))
	require.NoError(tb, err, "%s should be the repository root", root)
	return root
}

// mustLoadCompose loads docker-compose.yml as `docker compose` does from
// root, with env (KEY=value) as the only environment: defaults in ${X:-y}
// apply unless env sets X, whatever the caller's own environment holds.
func mustLoadCompose(tb testing.TB, root string, env []string) *types.Project {
	tb.Helper()
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root),
		cli.WithEnv(env),
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
	)
	require.NoError(tb, err, "compose project options")
	p, err := opts.LoadProject(tb.Context())
	require.NoError(tb, err, "load docker-compose.yml")
	return p
}

// mustJobgateEnv returns every JOBGATE_* variable the binary reads, with its
// default, from the envconfig tags of app/config.go's Config.
func mustJobgateEnv(tb testing.TB, root string) map[string]string {
	tb.Helper()
	path := filepath.Join(root, "app", "config.go")
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	require.NoError(tb, err, "parse %s", path)
	vars := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "Config" {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		require.True(tb, ok, "%s: Config is not a struct", path)
		for _, field := range st.Fields.List {
			if field.Tag == nil {
				continue
			}
			tag, err := strconv.Unquote(field.Tag.Value)
			require.NoError(tb, err, "%s: tag %s", path, field.Tag.Value)
			if name := reflect.StructTag(tag).Get("envconfig"); name != "" {
				vars[name] = reflect.StructTag(tag).Get("default")
			}
		}
		return false
	})
	require.Contains(tb, vars, "JOBGATE_ROLE", "%s: found no envconfig tags in Config", path)
	return vars
}

// env returns the value service s sets for key.
func env(s types.ServiceConfig, key string) (string, bool) {
	v, ok := s.Environment[key]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

// mustEnv returns the value service s sets for key, failing if it is unset.
func mustEnv(tb testing.TB, s types.ServiceConfig, key string) string {
	tb.Helper()
	v, ok := env(s, key)
	require.True(tb, ok, "service %q does not set %s", s.Name, key)
	return v
}

// httpPort returns the port jobgate service s listens on.
func httpPort(tb testing.TB, s types.ServiceConfig, jobgateEnv map[string]string) string {
	tb.Helper()
	addr := jobgateEnv["JOBGATE_HTTP_ADDR"]
	if v, ok := env(s, "JOBGATE_HTTP_ADDR"); ok {
		addr = v
	}
	_, port, err := net.SplitHostPort(addr)
	require.NoError(tb, err, "service %q: JOBGATE_HTTP_ADDR %q", s.Name, addr)
	return port
}

// requireServiceAddr asserts that addr, the value of what, is host:port
// of the service want: its name and a port it publishes or exposes.
func requireServiceAddr(tb testing.TB, p *types.Project, addr, want, what string) {
	tb.Helper()
	host, port, err := net.SplitHostPort(addr)
	require.NoError(tb, err, "%s: %q is not host:port", what, addr)
	require.Equal(tb, want, host, "%s must name the %q service", what, want)
	var ports []string
	for _, pc := range p.Services[want].Ports {
		ports = append(ports, strconv.FormatUint(uint64(pc.Target), 10))
	}
	ports = append(ports, p.Services[want].Expose...)
	require.Contains(tb, ports, port, "%s must use a port of the %q service (%v)", what, want, ports)
}

// requireBind asserts that service s bind-mounts source at target.
func requireBind(tb testing.TB, s types.ServiceConfig, source, target string) {
	tb.Helper()
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Target == target {
			require.Equal(tb, source, v.Source, "service %q mounts the wrong file at %s", s.Name, target)
			return
		}
	}
	require.Failf(tb, "missing mount", "service %q must mount %s at %s", s.Name, source, target)
}

// mustNginxDirectives reads an nginx config into directive name -> the
// arguments of each occurrence, whatever block it is in.
func mustNginxDirectives(tb testing.TB, path string) map[string][]string {
	tb.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(tb, err, "read %s", path)
	var text strings.Builder
	for line := range strings.Lines(string(raw)) {
		line, _, _ = strings.Cut(line, "#")
		text.WriteString(line)
	}
	directives := map[string][]string{}
	for _, stmt := range regexp.MustCompile(`[{};]`).Split(text.String(), -1) {
		fields := strings.Fields(stmt)
		if len(fields) == 0 {
			continue
		}
		directives[fields[0]] = append(directives[fields[0]], strings.Join(fields[1:], " "))
	}
	return directives
}

// dockerfile is a Dockerfile's instructions, continuation lines joined.
type dockerfile []instruction

type instruction struct {
	cmd  string // upper case: FROM, RUN, COPY...
	args string
}

// mustDockerfile reads the Dockerfile at path.
func mustDockerfile(tb testing.TB, path string) dockerfile {
	tb.Helper()
	f, err := os.Open(path)
	require.NoError(tb, err, "open the Dockerfile")
	defer f.Close()
	var df dockerfile
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if rest, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(rest + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		df = append(df, instruction{cmd: strings.ToUpper(cmd), args: strings.Join(strings.Fields(args), " ")})
		cur.Reset()
	}
	require.NoError(tb, sc.Err(), "read the Dockerfile")
	require.NotEmpty(tb, df, "the Dockerfile is empty")
	return df
}

// finalStage returns the instructions from the last FROM on: the image.
func (df dockerfile) finalStage() dockerfile {
	last := 0
	for i, in := range df {
		if in.cmd == "FROM" {
			last = i
		}
	}
	return df[last:]
}

// args returns the arguments of every cmd instruction.
func (df dockerfile) args(cmd string) []string {
	var out []string
	for _, in := range df {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// buildOutput returns the -o path of the `go build` of pkg, failing unless
// a RUN builds it statically, reproducibly and stripped.
func (df dockerfile) buildOutput(tb testing.TB, pkg string) string {
	tb.Helper()
	re := regexp.MustCompile(`go build ([^&;|]*?)-o (\S+) ` + regexp.QuoteMeta(pkg) + `(?:\s|$)`)
	for _, run := range df.args("RUN") {
		m := re.FindStringSubmatch(run)
		if m == nil {
			continue
		}
		require.Contains(tb, m[1], "-trimpath", "the Dockerfile builds %s without -trimpath", pkg)
		require.Contains(tb, m[1], `-ldflags="-s -w"`, "the Dockerfile builds %s without stripping (-ldflags=\"-s -w\")", pkg)
		return m[2]
	}
	require.Failf(tb, "missing build", "no RUN in the Dockerfile does `go build ... -o <path> %s`", pkg)
	return ""
}

// copies reports whether a COPY --from another stage copies from to to.
func (df dockerfile) copies(from, to string) bool {
	for _, args := range df.args("COPY") {
		fields := strings.Fields(args)
		if len(fields) == 3 && strings.HasPrefix(fields[0], "--from=") && fields[1] == from && fields[2] == to {
			return true
		}
	}
	return false
}

// requireDockerfileGoVersion asserts that the build stage is a static build
// on the Go release go.mod asks for.
func requireDockerfileGoVersion(tb testing.TB, df dockerfile, root string) {
	tb.Helper()
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(tb, err, "read go.mod")
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	require.NotNil(tb, m, "go.mod has no go directive")
	want := "golang:" + string(m[1])
	froms := df.args("FROM")
	require.True(tb, slices.ContainsFunc(froms, func(from string) bool {
		return strings.HasPrefix(from, want+" ") || strings.HasPrefix(from, want+"-") || strings.HasPrefix(from, want+".")
	}),
		"the Dockerfile's build stage must be FROM %s (go.mod says go %s), got %v", want, m[1], froms)
	static := slices.ContainsFunc(append(df.args("ENV"), df.args("RUN")...), func(s string) bool { return strings.Contains(s, "CGO_ENABLED=0") })
	require.True(tb, static, "the Dockerfile must build with CGO_ENABLED=0: the final image has no C library")
}

// The API streams results that workers write to blob storage: both must
// use the same storage, a shared volume or the same JOBGATE_BLOB_URL.
func TestComposeSharesBlobStorage(t *testing.T) {
	t.Parallel()
	p := mustLoadCompose(t, mustRepoRoot(t), nil)
	api, worker := p.Services[apiService], p.Services[workerService]
	if url, ok := env(api, "JOBGATE_BLOB_URL"); ok {
		require.Equal(t, url, mustEnv(t, worker, "JOBGATE_BLOB_URL"), "API and workers must share JOBGATE_BLOB_URL")
		return
	}
	dir := mustEnv(t, api, "JOBGATE_DATA_DIR")
	require.Equal(t, dir, mustEnv(t, worker, "JOBGATE_DATA_DIR"), "API and workers must share JOBGATE_DATA_DIR")
	volumeAt := func(s types.ServiceConfig) string {
		for _, v := range s.Volumes {
			if v.Target == dir && v.Type == types.VolumeTypeVolume {
				return v.Source
			}
		}
		return ""
	}
	require.NotEmpty(t, volumeAt(api), "the API's JOBGATE_DATA_DIR %s must be a named volume", dir)
	require.Equal(t, volumeAt(api), volumeAt(worker), "API and workers must mount the same volume at %s", dir)
}

// Every API replica keys job ids with the same deployment secret: the one
// JOBGATE_DEPLOYMENT_SECRET gives, or the one the first generates in a
// named volume they all mount at JOBGATE_DATA_DIR.
func TestComposeAPIsShareADeploymentSecret(t *testing.T) {
	t.Parallel()
	root := mustRepoRoot(t)
	secret := "c2VjcmV0LW9mLWF0LWxlYXN0LTMyLWNoYXJhY3RlcnM="
	p := mustLoadCompose(t, root, []string{"JOBGATE_DEPLOYMENT_SECRET=" + secret})
	require.Equal(t, secret, mustEnv(t, p.Services[apiService], "JOBGATE_DEPLOYMENT_SECRET"), "jobgate-api must take JOBGATE_DEPLOYMENT_SECRET from the environment")

	api := mustLoadCompose(t, root, nil).Services[apiService]
	if v, _ := env(api, "JOBGATE_DEPLOYMENT_SECRET"); v != "" {
		require.GreaterOrEqual(t, len(v), 32, "JOBGATE_DEPLOYMENT_SECRET must be at least 32 characters")
		return
	}
	dir := mustEnv(t, api, "JOBGATE_DATA_DIR")
	require.True(t, slices.ContainsFunc(api.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Target == dir && v.Type == types.VolumeTypeVolume && v.Source != ""
	}), "without JOBGATE_DEPLOYMENT_SECRET, the API replicas' JOBGATE_DATA_DIR %s must be a named volume they share", dir)
}
