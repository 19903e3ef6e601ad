package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain"
)

// root is the repository root, relative to this package.
const root = ".."

// markdownFiles are the documents a reader of the repository follows: the
// README, every page under docs/ and the other READMEs.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "bin" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			files = append(files, p)
		}
		return nil
	})
	require.NoError(t, err)
	require.Contains(t, files, filepath.Join(root, "README.md"))
	require.Contains(t, files, filepath.Join(root, "docs", "templates.md"))
	return files
}

var (
	// mdLink is an inline Markdown link or image: [text](target) or
	// [text](target "title").
	mdLink = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	// fence is a fenced code block; links inside code are not links.
	fence   = regexp.MustCompile("(?ms)^\\s*```.*?^\\s*```")
	heading = regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*#*\s*$`)
)

// anchors returns the GitHub-style anchors of a Markdown file's headings.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, m := range heading.FindAllStringSubmatch(fence.ReplaceAllString(text, ""), -1) {
		var b strings.Builder
		for _, r := range strings.ToLower(m[1]) {
			switch {
			case r == ' ' || r == '-':
				b.WriteRune('-')
			case r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r > 127:
				b.WriteRune(r)
			}
		}
		slug := b.String()
		if n := seen[slug]; n > 0 {
			out[slug+"-"+strconv.Itoa(n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

// TestRelativeLinksResolve: every relative link of every Markdown file
// points to a file or directory of the repository, and a #fragment to a
// heading of the Markdown file it names. Absolute URLs are not followed.
func TestRelativeLinksResolve(t *testing.T) {
	absRoot, err := filepath.Abs(root)
	require.NoError(t, err)
	checked := 0
	for _, f := range markdownFiles(t) {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		text := fence.ReplaceAllString(string(data), "")
		for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			checked++
			path, frag, _ := strings.Cut(target, "#")
			dest := f
			if path != "" {
				dest = filepath.Join(filepath.Dir(f), filepath.FromSlash(path))
				abs, err := filepath.Abs(dest)
				require.NoError(t, err)
				require.True(t, abs == absRoot || strings.HasPrefix(abs, absRoot+string(filepath.Separator)),
					"%s: link %q leaves the repository", f, target)
				_, err = os.Stat(dest)
				require.NoError(t, err, "%s: link %q does not resolve", f, target)
			}
			if frag != "" && strings.HasSuffix(dest, ".md") {
				destText, err := os.ReadFile(dest)
				require.NoError(t, err)
				require.True(t, anchors(string(destText))[frag], "%s: link %q: no heading #%s in %s", f, target, frag, dest)
			}
		}
	}
	require.Greater(t, checked, 10, "the link check saw the links")
}

// TestNothingPointsOutsideTheRepository: no document refers to the
// workshop directory next to the repository, or to its contract file by
// name (links above the root are TestRelativeLinksResolve's). The path is
// assembled so that grepping docs/ for it finds only documents.
func TestNothingPointsOutsideTheRepository(t *testing.T) {
	workshop := path.Join("..", "shared")
	for _, f := range markdownFiles(t) {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NotContains(t, string(data), workshop, f)
		require.NotContains(t, string(data), "CONTRACT.md", "%s: the contract page is docs/contract.md", f)
	}
}

// yamlKeys lists the keys the template decoder accepts, as dotted paths
// from the yaml tags of domain.TaskTemplate (lists and maps are walked into).
func yamlKeys(t reflect.Type, prefix string, out map[string]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[prefix+name] = true
		yamlKeys(f.Type, prefix+name+".", out)
	}
}

// TestTemplateReferenceNamesEveryKey: docs/templates.md mentions, in code
// format, every key the template decoder knows — so a key added to
// domain.TaskTemplate cannot stay undocumented.
func TestTemplateReferenceNamesEveryKey(t *testing.T) {
	data, err := os.ReadFile("templates.md")
	require.NoError(t, err)
	var code []string
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(fence.ReplaceAllString(string(data), ""), -1) {
		code = append(code, m[1])
	}
	keys := map[string]bool{}
	yamlKeys(reflect.TypeOf(domain.TaskTemplate{}), "", keys)
	require.Greater(t, len(keys), 30)
	for key := range keys {
		leaf := key[strings.LastIndex(key, ".")+1:]
		word := regexp.MustCompile(`(^|[^a-z_])` + regexp.QuoteMeta(leaf) + `($|[^a-z_])`)
		found := false
		for _, c := range code {
			if word.MatchString(c) {
				found = true
				break
			}
		}
		require.True(t, found, "docs/templates.md does not name the template key %q (%s)", leaf, key)
	}
}

// TestTemplateExamplesValidate: every YAML block of docs/templates.md marked
// "# template" is a valid template for the real decoder and validator.
func TestTemplateExamplesValidate(t *testing.T) {
	data, err := os.ReadFile("templates.md")
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?ms)^```yaml\n(# template\n.*?)^```").FindAllStringSubmatch(string(data), -1)
	require.GreaterOrEqual(t, len(blocks), 2)
	for i, b := range blocks {
		tmpl, err := domain.ParseTemplateYAML([]byte(b[1]))
		require.NoError(t, err, "example %d", i)
		require.NoError(t, tmpl.Validate(), "example %d", i)
		for env := range tmpl.Environments {
			require.NoError(t, tmpl.ResolveForEnvironment(env).Validate(), "example %d resolved for %s", i, env)
		}
	}
}

// TestTemplateExampleEnvironmentResolution checks the prose under the
// environments example against the real resolution.
func TestTemplateExampleEnvironmentResolution(t *testing.T) {
	data, err := os.ReadFile("templates.md")
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?ms)^```yaml\n(# template\nname: nightly_report\n.*?)^```").FindStringSubmatch(string(data))
	require.NotNil(t, blocks)
	tmpl, err := domain.ParseTemplateYAML([]byte(blocks[1]))
	require.NoError(t, err)

	test := tmpl.ResolveForEnvironment("test")
	extract, _ := test.StepByName("extract")
	render, _ := test.StepByName("render")
	require.Equal(t, map[string]any{"source": "fixtures", "batch": 500}, extract.Handler.Initialization)
	require.Equal(t, uint32(5), *extract.TimeoutSeconds)
	require.False(t, extract.Retry.Retryable)
	require.Equal(t, uint32(5), *render.TimeoutSeconds)

	dev := tmpl.ResolveForEnvironment("development")
	require.Equal(t, tmpl, dev, "no overrides for development")
}

// TestContractListsEveryErrorCode: the error table of docs/contract.md has
// every Code* constant of the orchestration API (read from its source).
func TestContractListsEveryErrorCode(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join(root, "adapters", "web", "orchestrationapi", "errors.go"), nil, 0)
	require.NoError(t, err)
	var codes []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if strings.HasPrefix(name.Name, "Code") && i < len(vs.Values) {
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					v, err := strconv.Unquote(lit.Value)
					require.NoError(t, err)
					codes = append(codes, v)
				}
			}
		}
		return true
	})
	require.GreaterOrEqual(t, len(codes), 10)
	contract, err := os.ReadFile("contract.md")
	require.NoError(t, err)
	for _, c := range codes {
		if c == "DATABASE_ERROR" {
			continue // declared for the contract's table; this API answers INTERNAL_ERROR instead
		}
		require.Contains(t, string(contract), "`"+c+"`", "docs/contract.md does not list the error code %s", c)
	}
}
