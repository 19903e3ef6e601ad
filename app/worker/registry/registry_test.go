package registry

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
	"github.com/tasker-systems/tasker-go/ports/mocks"
)

const validYAML = `name: %s
namespace_name: %s
version: "1.0.0"
steps:
  - name: a
    handler: {callable: examples.square}
  - name: b
    dependencies: [a]
    handler: {callable: examples.square}
`

func writeFile(t *testing.T, dir, rel, content string) string {
	t.Helper()
	p := filepath.Join(dir, rel)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func tmpl(name, ns string) string {
	return sprintf(validYAML, name, ns)
}

func TestDiscoverIsRecursiveAndFiltersExtensions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := writeFile(t, dir, "a.yaml", tmpl("a", "ns"))
	b := writeFile(t, dir, "sub/deeper/b.yml", tmpl("b", "ns"))
	writeFile(t, dir, "c.yaml.backup", "x")
	writeFile(t, dir, "notes.txt", "x")
	files, err := Discover(dir)
	require.NoError(t, err)
	require.Equal(t, []string{a, b}, files)

	_, err = Discover(filepath.Join(dir, "missing"))
	require.ErrorContains(t, err, "missing")
	_, err = Discover(a)
	require.ErrorContains(t, err, "not a directory")
}

func setup(t *testing.T, dir string, skip bool) (*Registry, *mocks.TemplateStore, *mocks.Queue) {
	t.Helper()
	store, q := mocks.NewTemplateStore(t), mocks.NewQueue(t)
	r, err := New(Config{TemplateDir: dir, Namespaces: []string{"ns", "other"}, SkipInvalid: skip}, store, q, nil)
	require.NoError(t, err)
	return r, store, q
}

func expectRegister(store *mocks.TemplateStore, name string, err error) {
	store.EXPECT().RegisterTemplate(mock.Anything, mock.MatchedBy(func(t domain.TaskTemplate) bool { return t.Name == name }), mock.Anything).
		RunAndReturn(func(_ context.Context, t domain.TaskTemplate, conf json.RawMessage) (ports.RegisteredTemplate, error) {
			if err != nil {
				return ports.RegisteredTemplate{}, err
			}
			return ports.RegisteredTemplate{Namespace: t.NamespaceName, Name: t.Name, Version: t.Version, Configuration: conf}, nil
		}).Once()
}

func TestLoadRegistersValidTemplatesWithFullConfiguration(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "one.yaml", tmpl("one", "ns"))
	writeFile(t, dir, "x/two.yml", tmpl("two", "elsewhere"))
	r, store, _ := setup(t, dir, false)
	expectRegister(store, "one", nil)
	expectRegister(store, "two", nil)
	rep, err := r.Load(context.Background())
	require.NoError(t, err)
	require.Len(t, rep.Registered, 2, "every valid template is registered, whatever its namespace")
	conf := rep.Registered[0].Registered.Configuration
	var m map[string]any
	require.NoError(t, json.Unmarshal(conf, &m))
	require.Contains(t, m, "environments", "configuration has every field present")
	require.Contains(t, m, "input_schema")

	require.True(t, r.CanHandle("ns", "one", "1.0.0"))
	require.False(t, r.CanHandle("ns", "one", "2.0.0"), "version matters (D-f)")
	require.False(t, r.CanHandle("elsewhere", "two", "1.0.0"), "namespace not served")
	require.False(t, r.CanHandle("other", "one", "1.0.0"))
	require.Len(t, r.Templates(), 2)
}

func TestLoadRefusesInvalidFilesUnlessSkipping(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "good.yaml", tmpl("good", "ns"))
	bad := writeFile(t, dir, "bad.yaml", "name: bad\nnamespace_name: ns\nversion: \"1.0.0\"\nsteps: []\n")
	broken := writeFile(t, dir, "broken.yaml", "name: [unclosed\n")
	dup := writeFile(t, dir, "z_dup.yaml", tmpl("good", "ns"))
	typo := writeFile(t, dir, "typo.yaml", strings.Replace(tmpl("typo", "ns"), "handler:", "dependancies: []\n    handler:", 1))

	t.Run("refuse", func(t *testing.T) {
		t.Parallel()
		r, _, _ := setup(t, dir, false) // the store mock fails the test on any registration
		_, err := r.Load(context.Background())
		var le *LoadError
		require.ErrorAs(t, err, &le)
		require.Len(t, le.Files, 4)
		require.ErrorContains(t, err, bad+": ")
		require.ErrorContains(t, err, "steps")
		require.ErrorContains(t, err, broken+": ")
		require.ErrorContains(t, err, dup+": ")
		require.ErrorContains(t, err, "also defined in")
		require.ErrorContains(t, err, typo+`:`)
		require.ErrorContains(t, err, `unknown key "dependancies" in a step (did you mean "dependencies"?)`)
		require.Empty(t, r.Templates())
	})
	t.Run("skip", func(t *testing.T) {
		t.Parallel()
		store, q := mocks.NewTemplateStore(t), mocks.NewQueue(t)
		core, logs := observer.New(zap.InfoLevel)
		r, err := New(Config{TemplateDir: dir, Namespaces: []string{"ns", "other"}, SkipInvalid: true}, store, q, zap.New(core))
		require.NoError(t, err)
		expectRegister(store, "good", nil)
		rep, err := r.Load(context.Background())
		require.NoError(t, err)
		require.Len(t, rep.Registered, 1)
		require.Len(t, rep.Invalid, 4)
		require.True(t, r.CanHandle("ns", "good", "1.0.0"))
		skipped := logs.FilterMessageSnippet("skipping invalid task template file: ").All()
		require.Len(t, skipped, 4, "one line per skipped file")
		var typoLine string
		for _, e := range skipped {
			require.NotContains(t, e.Message, "\n")
			if strings.Contains(e.Message, typo) {
				typoLine = e.Message
			}
		}
		require.Regexp(t, `^skipping invalid task template file: .*typo\.yaml:\d+: unknown key "dependancies" in a step`, typoLine)
		t.Log(typoLine)
	})
}

func TestLoadSkipsTemplatesTheDatabaseRejects(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", tmpl("a", "ns"))
	writeFile(t, dir, "b.yaml", tmpl("b", "ns"))
	r, store, _ := setup(t, dir, false)
	expectRegister(store, "a", errors.New("violates tasker_named_tasks_namespace_name_unique"))
	expectRegister(store, "b", nil)
	rep, err := r.Load(context.Background())
	require.NoError(t, err)
	require.Len(t, rep.Rejected, 1)
	require.ErrorContains(t, rep.Rejected[0].Err, "namespace_name_unique")
	require.False(t, r.CanHandle("ns", "a", "1.0.0"))
	require.True(t, r.CanHandle("ns", "b", "1.0.0"))
}

func TestEnsureQueues(t *testing.T) {
	t.Parallel()
	r, _, q := setup(t, t.TempDir(), false)
	for _, name := range []string{"ns_queue", "other_queue", domain.QueueStepResults} {
		q.EXPECT().CreateQueue(mock.Anything, name).Return(nil).Once()
	}
	require.NoError(t, r.EnsureQueues(context.Background()))
	require.Equal(t, []string{"ns_queue", "other_queue"}, r.Queues())

	r2, _, q2 := setup(t, t.TempDir(), false)
	q2.EXPECT().CreateQueue(mock.Anything, "ns_queue").Return(errors.New("permission denied")).Once()
	require.ErrorContains(t, r2.EnsureQueues(context.Background()), "create queue ns_queue: permission denied")
}

func TestNewValidatesNamespaces(t *testing.T) {
	t.Parallel()
	store, q := mocks.NewTemplateStore(t), mocks.NewQueue(t)
	_, err := New(Config{Namespaces: []string{"ok", "Bad-NS"}}, store, q, nil)
	require.ErrorContains(t, err, "worker.namespaces[1]")
	_, err = New(Config{}, store, q, nil)
	require.ErrorContains(t, err, "worker.namespaces")
	_, err = New(Config{Namespaces: []string{"ok"}}, nil, q, nil)
	require.Error(t, err)
}

func TestExampleTemplatesLoad(t *testing.T) {
	t.Parallel()
	files, err := Discover(filepath.Join("..", "..", "..", "configs", "tasks", "examples"))
	require.NoError(t, err)
	require.Len(t, files, 4)
	for _, f := range files {
		tm, err := LoadFile(f)
		require.NoError(t, err, f)
		require.Equal(t, "examples", tm.NamespaceName)
	}
}
