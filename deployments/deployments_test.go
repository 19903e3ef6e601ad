package deployments

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/tasker-systems/tasker-go/adapters/config"
)

// image is the one image every Kubernetes container runs.
const image = "ghcr.io/tasker-systems/tasker-go:0.1.0"

type doc = map[string]any

// readDocs parses every document of a (multi-document) YAML file.
func readDocs(t *testing.T, path string) []doc {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []doc
	for {
		var d doc
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, path)
		if d != nil {
			out = append(out, d)
		}
	}
	require.NotEmpty(t, out, "%s has no YAML document", path)
	return out
}

// dig walks maps and lists: keys are strings, list indexes ints.
func dig(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(doc)
			require.True(t, ok, "want a map at %q in %v", k, path)
			v, ok = m[k]
			require.True(t, ok, "missing key %q in %v", k, path)
		case int:
			l, ok := v.([]any)
			require.True(t, ok && k < len(l), "want a list with item %d in %v", k, path)
			v = l[k]
		}
	}
	return v
}

func str(t *testing.T, v any, path ...any) string {
	t.Helper()
	s, ok := dig(t, v, path...).(string)
	require.True(t, ok, "want a string at %v", path)
	return s
}

func integer(t *testing.T, v any, path ...any) int {
	t.Helper()
	n, ok := dig(t, v, path...).(int)
	require.True(t, ok, "want an integer at %v", path)
	return n
}

func yamlFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return err
	})
	require.NoError(t, err)
	return files
}

// k8sObjects maps "Kind/name" to every Kubernetes object under k8s/.
func k8sObjects(t *testing.T) map[string]doc {
	t.Helper()
	objs := map[string]doc{}
	files, err := filepath.Glob("k8s/*.yaml")
	require.NoError(t, err)
	for _, f := range files {
		for _, d := range readDocs(t, f) {
			key := str(t, d, "kind") + "/" + str(t, d, "metadata", "name")
			require.NotContains(t, objs, key, "duplicate object in %s", f)
			objs[key] = d
		}
	}
	return objs
}

// effectiveConfig loads configs/tasker with the given environment variables,
// exactly as a service would; unknown TASKER_*__* names fail the load.
func effectiveConfig(t *testing.T, env map[string]string) *config.Config {
	t.Helper()
	environ := make([]string, 0, len(env))
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	cfg, err := config.Load(config.LoadOptions{ConfigDir: filepath.Join("..", "configs", "tasker"), Environ: environ})
	require.NoError(t, err, "environment %v", environ)
	return cfg
}

func TestEveryYAMLFileParses(t *testing.T) {
	t.Parallel()
	files := yamlFiles(t)
	require.GreaterOrEqual(t, len(files), 6)
	for _, f := range files {
		docs := readDocs(t, f)
		if strings.HasPrefix(f, "k8s"+string(filepath.Separator)) {
			for _, d := range docs {
				require.NotEmpty(t, str(t, d, "apiVersion"), f)
				require.NotEmpty(t, str(t, d, "metadata", "name"), f)
			}
		}
	}
}

func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	objs := k8sObjects(t)
	for _, key := range []string{"ConfigMap/tasker-config", "Secret/tasker-secrets", "Job/tasker-migrate",
		"Deployment/tasker-orchestration", "Service/tasker-orchestration", "Deployment/tasker-worker"} {
		require.Contains(t, objs, key)
	}
	env := map[string]string{}
	for k, v := range dig(t, objs["ConfigMap/tasker-config"], "data").(doc) {
		env[k] = fmt.Sprint(v)
	}
	for k, v := range dig(t, objs["Secret/tasker-secrets"], "stringData").(doc) {
		env[k] = fmt.Sprint(v)
	}

	type podCheck struct {
		key, command        string
		readiness, liveness string
		port                int
		grace               bool
		validate            func(*config.Config) error
		shutdownOf          func(*config.Config) time.Duration
		bindAddressOf       func(*config.Config) string
	}
	checks := []podCheck{
		{key: "Deployment/tasker-worker", command: "tasker-worker", readiness: "/health/ready", liveness: "/health/live",
			port: 8081, grace: true, validate: (*config.Config).ValidateWorker,
			shutdownOf:    func(c *config.Config) time.Duration { return c.Pgmq.ShutdownTimeout() },
			bindAddressOf: func(c *config.Config) string { return c.WorkerWeb.BindAddress }},
		{key: "Deployment/tasker-orchestration", command: "tasker-orchestration", readiness: "/ready", liveness: "/live",
			port: 8080, grace: true, validate: (*config.Config).ValidateOrchestration,
			shutdownOf:    func(c *config.Config) time.Duration { return c.Orchestration.ShutdownTimeout() },
			bindAddressOf: func(c *config.Config) string { return c.Orchestration.BindAddress }},
		{key: "Job/tasker-migrate", command: "tasker-orchestration"},
	}
	for _, ck := range checks {
		t.Run(ck.key, func(t *testing.T) {
			pod := dig(t, objs[ck.key], "spec", "template")
			spec := dig(t, pod, "spec")
			c := dig(t, spec, "containers", 0)
			require.Equal(t, image, str(t, c, "image"))
			require.Equal(t, ck.command, str(t, c, "command", 0))
			require.DirExists(t, filepath.Join("..", "cmd", ck.command), "the command is one of the built binaries")
			require.Equal(t, true, dig(t, spec, "securityContext", "runAsNonRoot"))
			// The kubelet verifies runAsNonRoot only for a numeric user: the
			// image's USER must be numeric and the pod must name the same one.
			require.Equal(t, imageUser, integer(t, spec, "securityContext", "runAsUser"))
			require.Equal(t, imageGroup, integer(t, spec, "securityContext", "runAsGroup"))
			require.Equal(t, "RuntimeDefault", str(t, spec, "securityContext", "seccompProfile", "type"))
			require.Equal(t, false, dig(t, spec, "automountServiceAccountToken"), "no API token in the pods")
			require.Equal(t, false, dig(t, c, "securityContext", "allowPrivilegeEscalation"))
			require.Equal(t, true, dig(t, c, "securityContext", "readOnlyRootFilesystem"))
			require.Equal(t, []any{"ALL"}, dig(t, c, "securityContext", "capabilities", "drop"))
			require.NotNil(t, dig(t, c, "resources", "requests", "memory"))
			require.NotNil(t, dig(t, c, "resources", "limits", "memory"))
			refs := dig(t, c, "envFrom").([]any)
			require.Len(t, refs, 2, "config from the ConfigMap and the Secret")

			podEnv := map[string]string{}
			for k, v := range env {
				podEnv[k] = v
			}
			if list, ok := c.(doc)["env"].([]any); ok {
				for _, e := range list {
					podEnv[str(t, e, "name")] = str(t, e, "value")
				}
			}
			cfg := effectiveConfig(t, podEnv)
			if ck.validate == nil {
				require.NotEmpty(t, cfg.Database.URL)
				return
			}
			require.NoError(t, ck.validate(cfg), "the service would refuse to start with this configuration")

			require.Equal(t, ck.readiness, str(t, c, "readinessProbe", "httpGet", "path"))
			require.Equal(t, ck.liveness, str(t, c, "livenessProbe", "httpGet", "path"))
			// The startup probe holds liveness off while the service starts:
			// same endpoint, and a budget of at least 30 s.
			require.Equal(t, ck.liveness, str(t, c, "startupProbe", "httpGet", "path"))
			require.Equal(t, "http", str(t, c, "startupProbe", "httpGet", "port"))
			budget := integer(t, c, "startupProbe", "periodSeconds") * integer(t, c, "startupProbe", "failureThreshold")
			require.GreaterOrEqual(t, budget, 30, "startup probe budget in seconds")
			require.Equal(t, "http", str(t, c, "readinessProbe", "httpGet", "port"))
			require.Equal(t, ck.port, integer(t, c, "ports", 0, "containerPort"))
			_, bindPort, err := net.SplitHostPort(ck.bindAddressOf(cfg))
			require.NoError(t, err)
			require.Equal(t, fmt.Sprint(ck.port), bindPort, "the probed port is where the service listens")

			grace := time.Duration(integer(t, spec, "terminationGracePeriodSeconds")) * time.Second
			shutdown := ck.shutdownOf(cfg)
			require.Greater(t, grace, shutdown+5*time.Second,
				"SIGKILL must not arrive before the service's own shutdown timeout (%s) has run out", shutdown)
			labels := dig(t, objs[ck.key], "spec", "selector", "matchLabels").(doc)
			for k, v := range labels {
				require.Equal(t, v, dig(t, pod, "metadata", "labels", k), "selector matches the pod template")
			}
		})
	}

	t.Run("orchestration Service", func(t *testing.T) {
		svc := objs["Service/tasker-orchestration"]
		podLabels := dig(t, objs["Deployment/tasker-orchestration"], "spec", "template", "metadata", "labels").(doc)
		for k, v := range dig(t, svc, "spec", "selector").(doc) {
			require.Equal(t, v, podLabels[k])
		}
		require.Equal(t, 8080, integer(t, svc, "spec", "ports", 0, "port"))
		require.Equal(t, "http", str(t, svc, "spec", "ports", 0, "targetPort"))
		cfg := effectiveConfig(t, env)
		require.Equal(t, "http://tasker-orchestration:8080", cfg.OrchestrationAPI.BaseURL,
			"workers reach the orchestration through its Service")
	})

	for _, name := range []string{"tasker-orchestration", "tasker-worker"} {
		t.Run("PodDisruptionBudget/"+name, func(t *testing.T) {
			pdb, ok := objs["PodDisruptionBudget/"+name]
			require.True(t, ok, "a PDB for Deployment/%s", name)
			require.Equal(t, "policy/v1", str(t, pdb, "apiVersion"))
			podLabels := dig(t, objs["Deployment/"+name], "spec", "template", "metadata", "labels").(doc)
			for k, v := range dig(t, pdb, "spec", "selector", "matchLabels").(doc) {
				require.Equal(t, v, podLabels[k], "the PDB selects the Deployment's pods")
			}
			replicas := integer(t, objs["Deployment/"+name], "spec", "replicas")
			minAvailable := integer(t, pdb, "spec", "minAvailable")
			require.GreaterOrEqual(t, minAvailable, 1, "a drain keeps one pod serving")
			require.Less(t, minAvailable, replicas, "a drain must be able to evict a pod at all")
		})
	}

	t.Run("worker replicas", func(t *testing.T) {
		require.GreaterOrEqual(t, integer(t, objs["Deployment/tasker-worker"], "spec", "replicas"), 2)
		require.Equal(t, "Never", str(t, objs["Job/tasker-migrate"], "spec", "template", "spec", "restartPolicy"))
	})
}

func TestComposeFile(t *testing.T) {
	t.Parallel()
	compose := readDocs(t, "docker-compose.yml")[0]
	services := dig(t, compose, "services").(doc)
	require.Contains(t, str(t, services, "postgres", "image"), "pgmq", "the queues need the pgmq extension")
	for _, name := range []string{"postgres", "orchestration", "worker"} {
		require.NotEmpty(t, dig(t, services, name, "healthcheck", "test"), "%s has a healthcheck", name)
	}

	require.Equal(t, []any{"tasker-orchestration", "migrate"}, dig(t, services, "migrate", "command"))
	require.Equal(t, "service_healthy", str(t, services, "migrate", "depends_on", "postgres", "condition"))
	require.Equal(t, "service_completed_successfully", str(t, services, "orchestration", "depends_on", "migrate", "condition"))
	require.Equal(t, "service_healthy", str(t, services, "worker", "depends_on", "orchestration", "condition"))
	require.Equal(t, 2, integer(t, services, "worker", "deploy", "replicas"))

	// PostgreSQL is published on loopback and on a host port other than
	// 5432, so `up` works next to a local PostgreSQL; the URL the docs give
	// for it uses that port.
	published := str(t, services, "postgres", "ports", 0)
	host, port, target := splitPortMapping(t, published)
	require.Equal(t, "127.0.0.1", host, "loopback only")
	require.Equal(t, "5432", target)
	require.NotEqual(t, "5432", port, "must not clash with a PostgreSQL on the host")
	hostURL := "postgres://postgres:postgres@127.0.0.1:" + port + "/tasker?sslmode=disable"
	for _, f := range []string{"docker-compose.yml", "README.md"} {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		require.Contains(t, string(data), hostURL, "%s gives the published port", f)
	}

	for _, name := range []string{"migrate", "orchestration", "worker", "taskerctl"} {
		t.Run(name, func(t *testing.T) {
			s := dig(t, services, name)
			require.Equal(t, "tasker-go:local", str(t, s, "image"), "merged from x-tasker")
			require.Equal(t, "deployments/Dockerfile", str(t, s, "build", "dockerfile"))
			env := map[string]string{}
			for k, v := range dig(t, s, "environment").(doc) {
				env[k] = fmt.Sprint(v)
			}
			cfg := effectiveConfig(t, env)
			require.Equal(t, "http://orchestration:8080", cfg.OrchestrationAPI.BaseURL)
			switch name {
			case "worker":
				require.NoError(t, cfg.ValidateWorker())
				grace, err := time.ParseDuration(str(t, s, "stop_grace_period"))
				require.NoError(t, err)
				require.Greater(t, grace, cfg.Pgmq.ShutdownTimeout())
			case "orchestration":
				require.NoError(t, cfg.ValidateOrchestration())
				grace, err := time.ParseDuration(str(t, s, "stop_grace_period"))
				require.NoError(t, err)
				require.Greater(t, grace, cfg.Orchestration.ShutdownTimeout())
			}
		})
	}
}

// splitPortMapping splits a compose "HOST_IP:HOST_PORT:CONTAINER_PORT".
func splitPortMapping(t *testing.T, m string) (host, port, target string) {
	t.Helper()
	parts := strings.Split(m, ":")
	require.Len(t, parts, 3, "%q binds an explicit host address", m)
	return parts[0], parts[1], parts[2]
}

// The image's numeric user and group (distroless nonroot).
const (
	imageUser  = 65532
	imageGroup = 65532
)

// dockerfile returns the Dockerfile's instructions, continuation lines joined.
func dockerfile(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("Dockerfile")
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	var out []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		out = append(out, strings.Join(strings.Fields(cur.String()), " "))
		cur.Reset()
	}
	require.NoError(t, sc.Err())
	return out
}

func TestDockerfileBuildsLikeTheTaskfile(t *testing.T) {
	t.Parallel()
	task := readDocs(t, filepath.Join("..", "Taskfile.yml"))[0]
	build := str(t, task, "tasks", "build", "cmds", 0)
	build = strings.ReplaceAll(build, "{{.BIN}}", str(t, task, "vars", "BIN"))
	// The Taskfile's {{.VERSION}} is the Dockerfile's ${VERSION} build arg.
	build = strings.ReplaceAll(build, "{{.VERSION}}", "${VERSION}")
	require.Equal(t, `go build -trimpath -ldflags "-X github.com/tasker-systems/tasker-go/internal/buildinfo.Version=${VERSION}" -o bin/ ./cmd/...`,
		build, "update this test and the Dockerfile together")
	require.Contains(t, str(t, task, "vars", "VERSION", "sh"), "git describe", "the Taskfile stamps the git version")

	lines := dockerfile(t)
	runAt, cgoAt, versionAt, buildStageAt := -1, -1, -1, -1
	var froms []string
	for i, l := range lines {
		switch {
		case l == "RUN "+build:
			runAt = i
		case l == "ENV CGO_ENABLED=0":
			cgoAt = i
		case strings.HasPrefix(l, "ARG VERSION=") && versionAt < 0:
			versionAt = i
		case strings.HasPrefix(l, "FROM "):
			froms = append(froms, l)
			if buildStageAt < 0 {
				buildStageAt = i
			}
		}
	}
	require.GreaterOrEqual(t, runAt, 0, "the Dockerfile runs `%s`", build)
	require.True(t, cgoAt >= 0 && cgoAt < runAt, "CGO_ENABLED=0 is set before the build: static binaries")
	require.True(t, versionAt > buildStageAt && versionAt < runAt, "ARG VERSION is declared in the build stage, before the build")
	require.Len(t, froms, 2, "multi-stage")
	require.Regexp(t, `^FROM golang:\$\{GO_VERSION\}-\S+ AS build$`, froms[0])
	require.Regexp(t, `^FROM gcr\.io/distroless/static\S*:nonroot$`, froms[1])
	require.Contains(t, lines, fmt.Sprintf("USER %d:%d", imageUser, imageGroup), "numeric, for runAsNonRoot")
	// The runtime stage re-declares VERSION and labels the image with it.
	var labels string
	for i, l := range lines {
		if strings.HasPrefix(l, "LABEL ") && i > runAt {
			labels = l
		}
	}
	require.Contains(t, labels, `org.opencontainers.image.version="${VERSION}"`)
	require.Contains(t, labels, `org.opencontainers.image.licenses="MIT"`)
	require.Contains(t, lines, "COPY --from=build /src/bin/ /usr/local/bin/")
	require.Contains(t, lines, "COPY --from=build /src/configs/ /app/configs/")

	gomod, err := os.ReadFile(filepath.Join("..", "go.mod"))
	require.NoError(t, err)
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	require.NotNil(t, goLine)
	var arg string
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, "ARG GO_VERSION="); ok {
			arg = v
		}
	}
	require.True(t, strings.HasPrefix(arg, string(goLine[1])+"."),
		"builder Go %q is the go.mod language version %s", arg, goLine[1])
}
