package postgres_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

func exampleTemplate(ns, name, version string) domain.TaskTemplate {
	tmpl := testdb.TemplateFromSpec(testdb.TaskSpec{Steps: []testdb.StepSpec{{Name: "a"}, {Name: "b", Deps: []string{"a"}}}})
	tmpl.NamespaceName, tmpl.Name, tmpl.Version = ns, name, version // may be empty on purpose
	return tmpl
}

func TestRegisterTemplate(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	store := postgres.NewTemplateStore(db)
	ctx := context.Background()
	tmpl := exampleTemplate("reg_ns", "linear", "1.0.0")
	tmpl.Description = testdb.Ptr("first")
	cfg, err := json.Marshal(tmpl)
	require.NoError(t, err)

	first, err := store.RegisterTemplate(ctx, tmpl, cfg)
	require.NoError(t, err)
	require.Equal(t, "reg_ns", first.Namespace)
	require.Equal(t, "linear", first.Name)
	require.Equal(t, "1.0.0", first.Version)
	require.Equal(t, "first", *first.Description)
	require.JSONEq(t, string(cfg), string(first.Configuration), "configuration stored verbatim")

	// Registering again is idempotent: same rows, refreshed description and configuration.
	tmpl.Description = testdb.Ptr("second")
	again, err := store.RegisterTemplate(ctx, tmpl, nil) // nil configuration → json.Marshal(tmpl)
	require.NoError(t, err)
	require.Equal(t, first.NamedTaskUUID, again.NamedTaskUUID)
	require.Equal(t, first.TaskNamespaceUUID, again.TaskNamespaceUUID)
	require.Equal(t, "second", *again.Description)
	require.False(t, again.UpdatedAt.Before(first.UpdatedAt))
	var stored domain.TaskTemplate
	require.NoError(t, json.Unmarshal(again.Configuration, &stored))
	require.Equal(t, "second", *stored.Description)

	// A second version coexists (D-f) in the same namespace.
	v2, err := store.RegisterTemplate(ctx, exampleTemplate("reg_ns", "linear", "2.0.0"), nil)
	require.NoError(t, err)
	require.NotEqual(t, first.NamedTaskUUID, v2.NamedTaskUUID)
	require.Equal(t, first.TaskNamespaceUUID, v2.TaskNamespaceUUID)

	var counts struct {
		Namespaces int `db:"namespaces"`
		NamedTasks int `db:"named_tasks"`
	}
	require.NoError(t, db.Get(&counts, `SELECT
		(SELECT COUNT(*) FROM tasker_task_namespaces WHERE name = 'reg_ns') AS namespaces,
		(SELECT COUNT(*) FROM tasker_named_tasks WHERE name = 'linear') AS named_tasks`))
	require.Equal(t, 1, counts.Namespaces)
	require.Equal(t, 2, counts.NamedTasks)

	got, err := store.GetTemplate(ctx, "reg_ns", "linear", "1.0.0")
	require.NoError(t, err)
	require.Equal(t, first.NamedTaskUUID, got.NamedTaskUUID)
	got, err = store.GetTemplate(ctx, "reg_ns", "linear", "2.0.0")
	require.NoError(t, err)
	require.Equal(t, v2.NamedTaskUUID, got.NamedTaskUUID)
	_, err = store.GetTemplate(ctx, "reg_ns", "linear", "3.0.0")
	require.ErrorIs(t, err, ports.ErrNotFound)

	_, err = store.RegisterTemplate(ctx, exampleTemplate("other_ns", "diamond", "1.0.0"), nil)
	require.NoError(t, err)
	all, err := store.ListTemplates(ctx, "")
	require.NoError(t, err)
	require.Len(t, all, 3)
	require.Equal(t, []string{"other_ns/diamond@1.0.0", "reg_ns/linear@1.0.0", "reg_ns/linear@2.0.0"}, templateKeys(all))
	some, err := store.ListTemplates(ctx, "reg_ns")
	require.NoError(t, err)
	require.Equal(t, []string{"reg_ns/linear@1.0.0", "reg_ns/linear@2.0.0"}, templateKeys(some))
	none, err := store.ListTemplates(ctx, "nope")
	require.NoError(t, err)
	require.Empty(t, none)
}

func templateKeys(ts []ports.RegisteredTemplate) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.Namespace+"/"+t.Name+"@"+t.Version)
	}
	return out
}

func TestRegisterTemplateRejectsBadInput(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	store := postgres.NewTemplateStore(db)
	long := strings.Repeat("x", 65)
	cases := []struct {
		name  string
		tmpl  domain.TaskTemplate
		cfg   json.RawMessage
		field string
	}{
		{"empty namespace", exampleTemplate("", "n", "1.0.0"), nil, "namespace_name"},
		{"empty name", exampleTemplate("bad_ns", "", "1.0.0"), nil, "name"},
		{"empty version", exampleTemplate("bad_ns", "n", ""), nil, "version"},
		{"name too long", exampleTemplate("bad_ns", long, "1.0.0"), nil, "name"},
		{"version too long", exampleTemplate("bad_ns", "n", "1.0.0-"+long), nil, "version"},
		{"invalid configuration", exampleTemplate("bad_ns", "n", "1.0.0"), json.RawMessage(`{"x":`), "configuration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := store.RegisterTemplate(context.Background(), tc.tmpl, tc.cfg)
			var ve *domain.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tc.field, ve.Field)
		})
	}
	var n int
	require.NoError(t, db.Get(&n, `SELECT COUNT(*) FROM tasker_named_tasks`))
	require.Zero(t, n, "nothing registered")
	require.NoError(t, db.Get(&n, `SELECT COUNT(*) FROM tasker_task_namespaces`))
	require.Zero(t, n, "no namespace created")
}

// TestRegisterTemplateOnReferenceSchema simulates a reference database, which
// has the (namespace, name) unique constraint: a second version is rejected
// with a typed error naming the template and the constraint, and nothing is written.
func TestRegisterTemplateOnReferenceSchema(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	_, err := db.Exec(`ALTER TABLE tasker_named_tasks ADD CONSTRAINT ` + postgres.ReferenceNamespaceNameConstraint +
		` UNIQUE (task_namespace_uuid, name)`)
	require.NoError(t, err)
	store := postgres.NewTemplateStore(db)
	ctx := context.Background()
	_, err = store.RegisterTemplate(ctx, exampleTemplate("ref_ns", "linear", "1.0.0"), nil)
	require.NoError(t, err)
	_, err = store.RegisterTemplate(ctx, exampleTemplate("ref_ns", "linear", "1.0.0"), nil)
	require.NoError(t, err, "re-registering the same version still works")

	_, err = store.RegisterTemplate(ctx, exampleTemplate("ref_ns", "linear", "2.0.0"), nil)
	var conflict *postgres.TemplateConflictError
	require.ErrorAs(t, err, &conflict)
	require.Equal(t, postgres.ReferenceNamespaceNameConstraint, conflict.Constraint)
	require.Equal(t, "2.0.0", conflict.Version)
	require.Contains(t, err.Error(), "ref_ns/linear@2.0.0")
	require.Contains(t, err.Error(), postgres.ReferenceNamespaceNameConstraint)
	var versions []string
	require.NoError(t, db.Select(&versions, `SELECT version FROM tasker_named_tasks WHERE name = 'linear'`))
	require.Equal(t, []string{"1.0.0"}, versions)
}
