package taskinit_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/app/orchestration/taskinit"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
	"github.com/tasker-systems/tasker-go/ports/mocks"
)

var namedTask = uuid.MustParse("0198f0c2-0000-7000-8000-000000000001")

// finder is a TemplateFinder returning a fixed template or error.
type finder struct {
	tmpl ports.RegisteredTemplate
	err  error
}

func (f finder) GetTemplate(context.Context, string, string, string) (ports.RegisteredTemplate, error) {
	return f.tmpl, f.err
}

func template(t *testing.T) json.RawMessage {
	t.Helper()
	tmpl, err := domain.ParseTemplateYAML([]byte(`
name: orders
namespace_name: shop
version: "1.0.0"
system_dependencies: {primary: payments}
steps:
  - name: validate
    handler: {callable: shop.validate, initialization: {strict: true}}
  - name: charge
    dependencies: [validate]
    system_dependency: bank
    handler: {callable: shop.charge}
    retry: {retryable: false, limit: 1}
environments:
  test:
    steps:
      - name: charge
        retry: {retryable: true, limit: 7}
`))
	require.NoError(t, err)
	cfg, err := tmpl.ConfigurationJSON()
	require.NoError(t, err)
	return cfg
}

func request() domain.TaskRequest {
	return domain.TaskRequest{Name: "orders", Namespace: "shop", Version: "1.0.0", Context: json.RawMessage(`{"order":1}`)}
}

func TestCreateTaskBuildsStepsResolvedForEnvironment(t *testing.T) {
	t.Parallel()
	creator := mocks.NewTaskCreator(t)
	reg := ports.RegisteredTemplate{NamedTaskUUID: namedTask, Namespace: "shop", Name: "orders", Version: "1.0.0", Configuration: template(t)}
	want := domain.TaskCreationResponse{TaskUUID: uuid.New(), Status: "created", StepCount: 2}
	var got ports.NewTask
	creator.EXPECT().CreateTask(mock.Anything, mock.Anything).RunAndReturn(func(_ context.Context, nt ports.NewTask) (domain.TaskCreationResponse, error) {
		got = nt
		return want, nil
	})
	resp, err := taskinit.New(finder{tmpl: reg}, creator, "test").CreateTask(context.Background(), request())
	require.NoError(t, err)
	want.RootSteps = []string{"validate"} // the steps without dependencies, for the enqueue
	require.Equal(t, want, resp)

	require.Equal(t, namedTask, got.NamedTaskUUID)
	require.Equal(t, "orders", got.TaskName)
	require.Equal(t, "UNKNOWN", got.Request.Initiator, "defaults applied")
	require.JSONEq(t, `{"order":1}`, string(got.Context))
	wantHash, err := domain.IdentityHash(namedTask, json.RawMessage(`{"order":1}`))
	require.NoError(t, err)
	require.Equal(t, wantHash, got.IdentityHash)
	require.Len(t, got.Steps, 2)
	require.Equal(t, ports.NewStep{Name: "validate", SystemDependency: "payments", Retryable: true, RetryLimit: 3,
		Inputs: json.RawMessage(`{"strict":true}`), Dependencies: []string{}}, got.Steps[0])
	require.Equal(t, ports.NewStep{Name: "charge", SystemDependency: "bank", Retryable: true, RetryLimit: 7,
		Dependencies: []string{"validate"}}, got.Steps[1], "test environment override applied (D-q)")
}

func TestCreateTaskUsesDefaultSystemWithoutPrimary(t *testing.T) {
	t.Parallel()
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(template(t), &cfg))
	cfg["system_dependencies"] = map[string]any{"primary": ""}
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	creator := mocks.NewTaskCreator(t)
	creator.EXPECT().CreateTask(mock.Anything, mock.MatchedBy(func(nt ports.NewTask) bool {
		return nt.Steps[0].SystemDependency == taskinit.DefaultSystemDependency
	})).Return(domain.TaskCreationResponse{}, nil)
	_, err = taskinit.New(finder{tmpl: ports.RegisteredTemplate{Configuration: raw}}, creator, "development").
		CreateTask(context.Background(), request())
	require.NoError(t, err)
}

func TestCreateTaskErrors(t *testing.T) {
	t.Parallel()
	storeDown := errors.New("connection refused")
	invalid := template(t)
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(invalid, &cfg))
	cfg["steps"] = []any{}
	noSteps, err := json.Marshal(cfg)
	require.NoError(t, err)
	cases := []struct {
		name   string
		req    func() domain.TaskRequest
		finder finder
		check  func(t *testing.T, err error)
	}{
		{"empty name", func() domain.TaskRequest { r := request(); r.Name = ""; return r }, finder{},
			func(t *testing.T, err error) {
				var ve *domain.ValidationError
				require.ErrorAs(t, err, &ve)
				require.Equal(t, "name", ve.Field)
			}},
		{"unknown template", request, finder{err: ports.ErrNotFound}, func(t *testing.T, err error) {
			var nf *ports.NotFoundError
			require.ErrorAs(t, err, &nf)
			require.Equal(t, "Task template not found: shop/orders/1.0.0", nf.What)
		}},
		{"empty configuration", request, finder{tmpl: ports.RegisteredTemplate{Configuration: json.RawMessage(`{}`)}},
			func(t *testing.T, err error) { require.ErrorIs(t, err, ports.ErrNotFound) }},
		{"null configuration", request, finder{tmpl: ports.RegisteredTemplate{Configuration: json.RawMessage(`null`)}},
			func(t *testing.T, err error) { require.ErrorIs(t, err, ports.ErrNotFound) }},
		{"store failure", request, finder{err: storeDown}, func(t *testing.T, err error) {
			require.ErrorIs(t, err, storeDown)
			require.NotErrorIs(t, err, ports.ErrNotFound)
		}},
		{"unreadable configuration", request, finder{tmpl: ports.RegisteredTemplate{Configuration: json.RawMessage(`{"steps":5}`)}},
			func(t *testing.T, err error) {
				var ve *domain.ValidationError
				require.ErrorAs(t, err, &ve)
				require.Equal(t, "template", ve.Field)
			}},
		{"template without steps", request, finder{tmpl: ports.RegisteredTemplate{Configuration: noSteps}},
			func(t *testing.T, err error) {
				var tve *domain.TemplateValidationError
				require.ErrorAs(t, err, &tve)
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			creator := mocks.NewTaskCreator(t) // no call expected: nothing is written
			_, err := taskinit.New(tc.finder, creator, "test").CreateTask(context.Background(), tc.req())
			require.Error(t, err)
			tc.check(t, err)
		})
	}
}

func TestCreateTaskPropagatesCreatorError(t *testing.T) {
	t.Parallel()
	creator := mocks.NewTaskCreator(t)
	boom := errors.New("insert failed")
	creator.EXPECT().CreateTask(mock.Anything, mock.Anything).Return(domain.TaskCreationResponse{}, boom)
	_, err := taskinit.New(finder{tmpl: ports.RegisteredTemplate{Configuration: template(t)}}, creator, "test").
		CreateTask(context.Background(), request())
	require.ErrorIs(t, err, boom)
}

// TestCreateTaskEnforcesInputSchema: a context that breaks the template's
// input_schema is a ValidationError naming the pointer, and the creator is
// never called (a mock with no expectations fails on any call).
func TestCreateTaskEnforcesInputSchema(t *testing.T) {
	t.Parallel()
	tmpl, err := domain.ParseTemplateYAML([]byte(`
name: orders
namespace_name: shop
version: "1.0"
input_schema: {type: object, required: [order], properties: {order: {type: integer}}}
steps:
  - name: validate
    handler: {callable: shop.validate}
`))
	require.NoError(t, err)
	cfg, err := tmpl.ConfigurationJSON()
	require.NoError(t, err)
	creator := mocks.NewTaskCreator(t)
	svc := taskinit.New(finder{tmpl: ports.RegisteredTemplate{NamedTaskUUID: namedTask, Namespace: "shop", Name: "orders",
		Version: "1.0", Configuration: cfg}}, creator, "test")
	req := domain.TaskRequest{Name: "orders", Namespace: "shop", Version: "1.0", Context: json.RawMessage(`{"order":"one"}`)}
	_, err = svc.CreateTask(context.Background(), req)
	var ve *domain.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "context/order", ve.Field)
	require.Contains(t, ve.Reason, `input_schema at "/order": got string, want integer`)
}

// A keyed creation passes the key and the request hash (of the request with
// its defaults applied) to the creator; an unkeyed one passes neither.
func TestCreateTaskIdempotentPassesKeyAndHash(t *testing.T) {
	t.Parallel()
	creator := mocks.NewTaskCreator(t)
	reg := ports.RegisteredTemplate{NamedTaskUUID: namedTask, Configuration: template(t)}
	var got []ports.NewTask
	creator.EXPECT().CreateTask(mock.Anything, mock.Anything).RunAndReturn(func(_ context.Context, nt ports.NewTask) (domain.TaskCreationResponse, error) {
		got = append(got, nt)
		return domain.TaskCreationResponse{}, nil
	}).Times(3)
	svc := taskinit.New(finder{tmpl: reg}, creator, "test")
	_, err := svc.CreateTaskIdempotent(context.Background(), request(), "key-1")
	require.NoError(t, err)
	explicit := request()
	explicit.ApplyDefaults() // same request with its defaults spelled out: same hash
	explicit.Context = json.RawMessage(`{ "order" : 1 }`)
	_, err = svc.CreateTaskIdempotent(context.Background(), explicit, "key-1")
	require.NoError(t, err)
	_, err = svc.CreateTask(context.Background(), request())
	require.NoError(t, err)
	require.Equal(t, "key-1", got[0].IdempotencyKey)
	require.Len(t, got[0].RequestHash, 64)
	require.Equal(t, got[0].RequestHash, got[1].RequestHash)
	require.Empty(t, got[2].IdempotencyKey)
	require.Empty(t, got[2].RequestHash)
}

// mutableFinder returns whatever template it holds now.
type mutableFinder struct{ tmpl *ports.RegisteredTemplate }

func (f mutableFinder) GetTemplate(context.Context, string, string, string) (ports.RegisteredTemplate, error) {
	return *f.tmpl, nil
}

// Resolved templates are cached per named task, but a template registered
// again with another configuration takes effect on the next creation.
func TestCreateTaskUsesATemplateReRegisteredWithAnotherConfiguration(t *testing.T) {
	t.Parallel()
	reg := ports.RegisteredTemplate{NamedTaskUUID: namedTask, Configuration: template(t)}
	var limits []int
	creator := mocks.NewTaskCreator(t)
	creator.EXPECT().CreateTask(mock.Anything, mock.Anything).RunAndReturn(func(_ context.Context, nt ports.NewTask) (domain.TaskCreationResponse, error) {
		limits = append(limits, nt.Steps[1].RetryLimit)
		return domain.TaskCreationResponse{}, nil
	})
	svc := taskinit.New(mutableFinder{tmpl: &reg}, creator, "development")
	for range 2 {
		_, err := svc.CreateTask(context.Background(), request())
		require.NoError(t, err)
	}
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(reg.Configuration, &cfg))
	cfg["steps"].([]any)[1].(map[string]any)["retry"] = map[string]any{"retryable": true, "limit": 9}
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	reg.Configuration = raw
	_, err = svc.CreateTask(context.Background(), request())
	require.NoError(t, err)
	require.Equal(t, []int{1, 1, 9}, limits)
}
