// Package dashboard is the orchestration's web dashboard (/ui/): tasks with
// filters and live refresh, a task's DAG drawn as SVG with its steps
// coloured by state, a waterfall of step timings, results and errors; the
// templates with their DAGs; the queues with depth and oldest-message age;
// the dead-letter entries. Pages are server-rendered html/template with
// embedded CSS: building and serving it needs no Node toolchain and no CDN,
// and it works without JavaScript (live refresh is a meta refresh).
package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// Defaults of Config.
const (
	// DefaultBasePath is where the orchestration mounts the dashboard.
	DefaultBasePath = "/ui"
	// DefaultRefreshSeconds is the live-refresh period of the list pages and
	// of a running task's page: short enough to watch a task run, long
	// enough that an open tab costs the database almost nothing.
	DefaultRefreshSeconds = 5
	// DefaultPageSize is the number of tasks per list page.
	DefaultPageSize = 25
	// DefaultDeadLetterLimit caps the dead-letter entries listed.
	DefaultDeadLetterLimit = 200
)

// Config tunes the dashboard. Zero values select the defaults.
type Config struct {
	// BasePath is the URL prefix the pages are mounted under (links use it).
	BasePath string
	// RefreshSeconds is the live-refresh period; negative turns refresh off.
	RefreshSeconds int
	// PageSize is the number of tasks per list page.
	PageSize int
}

// TemplateReader lists and finds registered templates.
type TemplateReader interface {
	GetTemplate(ctx context.Context, namespace, name, version string) (ports.RegisteredTemplate, error)
	ListTemplates(ctx context.Context, namespace string) ([]ports.RegisteredTemplate, error)
}

// QueueMetrics reports pgmq.metrics_all (the pgmq client).
type QueueMetrics interface {
	MetricsAll(ctx context.Context) ([]ports.QueueMetrics, error)
}

// Deps are the dashboard's read-only collaborators; Log may be nil.
type Deps struct {
	Tasks     ports.TaskQuery
	History   ports.TaskHistory
	Templates TemplateReader
	Queues    QueueMetrics
	Log       *zap.Logger
}

//go:embed assets
var assets embed.FS

// Dashboard serves the pages.
type Dashboard struct {
	cfg   Config
	deps  Deps
	pages map[string]*template.Template
	log   *zap.Logger
}

// New parses the embedded templates; an error is a programming error in the
// templates, caught by the package's tests.
func New(cfg Config, d Deps) (*Dashboard, error) {
	if cfg.BasePath == "" {
		cfg.BasePath = DefaultBasePath
	}
	cfg.BasePath = strings.TrimRight(cfg.BasePath, "/")
	if cfg.RefreshSeconds == 0 {
		cfg.RefreshSeconds = DefaultRefreshSeconds
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	if d.Tasks == nil || d.History == nil || d.Templates == nil || d.Queues == nil {
		return nil, errors.New("dashboard: Tasks, History, Templates and Queues are required")
	}
	db := &Dashboard{cfg: cfg, deps: d, pages: map[string]*template.Template{}, log: d.Log}
	funcs := template.FuncMap{
		"base":       func() string { return cfg.BasePath },
		"ago":        ago,
		"fmtTime":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") },
		"fmtTimeP":   fmtTimeP,
		"pretty":     pretty,
		"str":        func(p *string) string { return deref(p) },
		"pct":        func(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) },
		"add":        func(a, b int) int { return a + b },
		"short":      func(id uuid.UUID) string { return id.String()[:8] },
		"stepStates": func() []domain.StepState { return domain.AllStepStates },
	}
	for _, page := range []string{"tasks", "task", "templates", "queues", "dlq"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "assets/layout.html", "assets/dag.html", "assets/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard: parse %s page: %w", page, err)
		}
		db.pages[page] = t
	}
	return db, nil
}

// Register adds the routes to g (the group at BasePath).
func (d *Dashboard) Register(g *gin.RouterGroup) {
	static, _ := fs.Sub(assets, "assets/static")
	g.GET("/", func(c *gin.Context) { c.Redirect(http.StatusFound, d.cfg.BasePath+"/tasks") })
	g.GET("/tasks", d.tasks)
	g.GET("/tasks/:task_uuid", d.task)
	g.GET("/templates", d.templates)
	g.GET("/queues", d.queues)
	g.GET("/dlq", d.dlq)
	g.StaticFS("/static", http.FS(static))
}

// page is the data every page shares.
type page struct {
	Title   string
	Nav     string
	Refresh int // seconds; 0 = no refresh
	Data    any
}

func (d *Dashboard) render(c *gin.Context, name string, p page) {
	var b strings.Builder
	if err := d.pages[name].ExecuteTemplate(&b, "layout.html", p); err != nil {
		d.log.Error("render dashboard page", zap.String("page", name), zap.Error(err))
		c.String(http.StatusInternalServerError, "render %s: %v", name, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "text/html; charset=utf-8", []byte(b.String()))
}

func (d *Dashboard) fail(c *gin.Context, status int, what string, err error) {
	d.log.Warn("dashboard", zap.String("what", what), zap.Error(err))
	c.String(status, "%s: %v", what, err)
}

func (d *Dashboard) refresh() int { return max(d.cfg.RefreshSeconds, 0) }

// tasksData is the tasks page.
type tasksData struct {
	Tasks      []ports.TaskView
	Total      int64
	Namespace  string
	Status     string
	States     []domain.TaskState
	Page       int
	PrevURL    string
	NextURL    string
	FirstIndex int
}

func (d *Dashboard) tasks(c *gin.Context) {
	pg, _ := strconv.Atoi(c.Query("page"))
	pg = max(pg, 1)
	f := ports.TaskFilter{Page: pg, PerPage: d.cfg.PageSize, Namespace: c.Query("namespace")}
	status := c.Query("status")
	if status != "" {
		st := domain.TaskState(status)
		if !st.Valid() {
			c.String(http.StatusBadRequest, "unknown status %q", status)
			return
		}
		f.Status = st
	}
	res, err := d.deps.Tasks.ListTasks(c.Request.Context(), f)
	if err != nil {
		d.fail(c, http.StatusInternalServerError, "list tasks", err)
		return
	}
	data := tasksData{Tasks: res.Tasks, Total: res.TotalCount, Namespace: f.Namespace, Status: status,
		States: domain.AllTaskStates, Page: pg, FirstIndex: (pg-1)*d.cfg.PageSize + 1}
	link := func(p int) string {
		q := url.Values{}
		if f.Namespace != "" {
			q.Set("namespace", f.Namespace)
		}
		if status != "" {
			q.Set("status", status)
		}
		q.Set("page", strconv.Itoa(p))
		return d.cfg.BasePath + "/tasks?" + q.Encode()
	}
	if pg > 1 {
		data.PrevURL = link(pg - 1)
	}
	if int64(pg*d.cfg.PageSize) < res.TotalCount {
		data.NextURL = link(pg + 1)
	}
	d.render(c, "tasks", page{Title: "Tasks", Nav: "tasks", Refresh: d.refresh(), Data: data})
}

// stepRow is one step of the task page's table.
type stepRow struct {
	ports.StepView
	Result string
	Error  string
}

// taskData is the task page.
type taskData struct {
	Task      ports.TaskView
	DAG       dag
	Waterfall []wfRow
	Steps     []stepRow
	Context   string
	Duration  string
	Notice    string
}

func (d *Dashboard) task(c *gin.Context) {
	id, err := uuid.Parse(c.Param("task_uuid"))
	if err != nil {
		c.String(http.StatusBadRequest, "invalid task uuid %q", c.Param("task_uuid"))
		return
	}
	ctx := c.Request.Context()
	t, err := d.deps.Tasks.GetTask(ctx, id)
	if errors.Is(err, ports.ErrNotFound) {
		c.String(http.StatusNotFound, "task %s not found", id)
		return
	}
	if err != nil {
		d.fail(c, http.StatusInternalServerError, "get task", err)
		return
	}
	trans, err := d.deps.History.StepTransitions(ctx, id)
	if err != nil {
		d.fail(c, http.StatusInternalServerError, "step transitions", err)
		return
	}
	data := taskData{Task: t, Context: pretty(t.Context)}
	states, attempts := map[string]string{}, map[string]int{}
	for _, s := range t.Steps {
		states[s.Name], attempts[s.Name] = string(s.CurrentState), s.Attempts
		row := stepRow{StepView: s}
		if res, ok := domain.ParseStepExecutionResult(s.Results); ok {
			row.Result = pretty(res.Result)
			if res.Error != nil {
				row.Error = res.Error.Message
				if res.Error.ErrorType != nil {
					row.Error = *res.Error.ErrorType + ": " + row.Error
				}
			}
		} else if len(s.Results) > 0 {
			row.Result = pretty(s.Results)
		}
		data.Steps = append(data.Steps, row)
	}
	defs, err := d.templateSteps(ctx, t.Namespace, t.Name, t.Version)
	if err != nil {
		// Draw the steps without edges rather than no page at all.
		data.Notice = "template not readable, dependencies not drawn: " + err.Error()
		for _, s := range t.Steps {
			defs = append(defs, domain.StepDefinition{Name: s.Name})
		}
	}
	data.DAG = layoutDAG(defs, states, attempts)
	end := time.Now()
	if t.CompletedAt != nil {
		end = *t.CompletedAt
	} else if t.State.IsTerminal() || t.State == domain.TaskError {
		end = t.UpdatedAt
	}
	data.Waterfall = waterfall(t.Steps, trans, t.CreatedAt, end)
	data.Duration = end.Sub(t.CreatedAt).Round(time.Millisecond).String()
	refresh := d.refresh()
	if t.State.IsTerminal() {
		refresh = 0 // nothing will change
	}
	d.render(c, "task", page{Title: "Task " + id.String(), Nav: "tasks", Refresh: refresh, Data: data})
}

// templateSteps reads a registered template's step definitions.
func (d *Dashboard) templateSteps(ctx context.Context, ns, name, version string) ([]domain.StepDefinition, error) {
	rt, err := d.deps.Templates.GetTemplate(ctx, ns, name, version)
	if err != nil {
		return nil, err
	}
	var tmpl domain.TaskTemplate
	if err := json.Unmarshal(rt.Configuration, &tmpl); err != nil {
		return nil, fmt.Errorf("decode template %s/%s/%s: %w", ns, name, version, err)
	}
	return tmpl.Steps, nil
}

// templateCard is one template with its DAG.
type templateCard struct {
	ports.RegisteredTemplate
	Steps int
	DAG   dag
	Error string
}

func (d *Dashboard) templates(c *gin.Context) {
	list, err := d.deps.Templates.ListTemplates(c.Request.Context(), c.Query("namespace"))
	if err != nil {
		d.fail(c, http.StatusInternalServerError, "list templates", err)
		return
	}
	cards := make([]templateCard, 0, len(list))
	for _, rt := range list {
		card := templateCard{RegisteredTemplate: rt}
		var tmpl domain.TaskTemplate
		if err := json.Unmarshal(rt.Configuration, &tmpl); err != nil {
			card.Error = err.Error()
		} else {
			card.Steps = len(tmpl.Steps)
			card.DAG = layoutDAG(tmpl.Steps, nil, nil)
		}
		cards = append(cards, card)
	}
	d.render(c, "templates", page{Title: "Templates", Nav: "templates", Data: cards})
}

func (d *Dashboard) queues(c *gin.Context) {
	qs, err := d.deps.Queues.MetricsAll(c.Request.Context())
	if err != nil {
		d.fail(c, http.StatusInternalServerError, "queue metrics", err)
		return
	}
	d.render(c, "queues", page{Title: "Queues", Nav: "queues", Refresh: d.refresh(), Data: qs})
}

// dlqData is the dead-letter page.
type dlqData struct {
	Present bool
	Entries []ports.DeadLetterEntry
}

func (d *Dashboard) dlq(c *gin.Context) {
	es, ok, err := d.deps.History.DeadLetters(c.Request.Context(), DefaultDeadLetterLimit)
	if err != nil {
		d.fail(c, http.StatusInternalServerError, "dead letters", err)
		return
	}
	d.render(c, "dlq", page{Title: "Dead letters", Nav: "dlq", Refresh: d.refresh(), Data: dlqData{Present: ok, Entries: es}})
}

func ago(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
}

func fmtTimeP(t *time.Time) string {
	if t == nil {
		return "–"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000")
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// pretty indents JSON for display; anything else is returned as is.
func pretty(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return string(raw)
	}
	return string(b)
}
