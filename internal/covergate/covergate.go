// Package covergate turns a Go coverage profile into a per-package statement
// coverage table and checks it against minimums. CI uses it (through
// `go run ./internal/covergate/cmd/covergate`) so coverage is a gate, not a hope.
package covergate

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Block is one line of a coverage profile: a statement block of a file.
type Block struct {
	File       string
	Start, End string
	Statements int
	Count      int
}

// PackageCoverage is the statement coverage of one package.
type PackageCoverage struct {
	Package    string
	Statements int
	Covered    int
}

// Percent is the covered share of statements, 100 for a package without statements.
func (p PackageCoverage) Percent() float64 {
	if p.Statements == 0 {
		return 100
	}
	return 100 * float64(p.Covered) / float64(p.Statements)
}

// ParseProfile reads a profile written by `go test -coverprofile`. Blocks
// repeated by several test binaries (with -coverpkg) are merged: a block
// counts as covered when any run covered it.
func ParseProfile(r io.Reader) ([]Block, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1024*1024), 1024*1024)
	seen := map[string]int{}
	var out []Block
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "mode:") {
			continue
		}
		colon := strings.LastIndex(text, ":")
		if colon < 0 {
			return nil, fmt.Errorf("profile line %d: missing file separator", line)
		}
		file, rest := text[:colon], strings.Fields(text[colon+1:])
		if len(rest) != 3 {
			return nil, fmt.Errorf("profile line %d: want 'range stmts count'", line)
		}
		stmts, err := strconv.Atoi(rest[1])
		if err != nil {
			return nil, fmt.Errorf("profile line %d: statements: %w", line, err)
		}
		count, err := strconv.Atoi(rest[2])
		if err != nil {
			return nil, fmt.Errorf("profile line %d: count: %w", line, err)
		}
		se := strings.SplitN(rest[0], ",", 2)
		if len(se) != 2 {
			return nil, fmt.Errorf("profile line %d: bad range %q", line, rest[0])
		}
		key := file + ":" + rest[0]
		if i, ok := seen[key]; ok {
			if count > out[i].Count {
				out[i].Count = count
			}
			continue
		}
		seen[key] = len(out)
		out = append(out, Block{File: file, Start: se[0], End: se[1], Statements: stmts, Count: count})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read profile: %w", err)
	}
	return out, nil
}

// Excluder decides which files do not count: generated mocks, the thin
// main.go wiring of the commands and the contract-test suites.
type Excluder []*regexp.Regexp

// DefaultExcluder excludes ports/mocks, any mocks package, cmd/*/main.go,
// and the ports' contract-test suites (packages named <port>test, such as
// adapters/pgmq/queuetest). A suite is test code kept in a non-test package
// so that every implementation's tests can import it; it runs only in those
// packages' test binaries, which without -coverpkg record none of it, so
// counting it would lower the totals by code that is not production code.
func DefaultExcluder() Excluder {
	return Excluder{
		regexp.MustCompile(`/mocks/[^/]+\.go$`),
		regexp.MustCompile(`/cmd/[^/]+/main\.go$`),
		regexp.MustCompile(`/[a-z0-9]+test/[^/]+\.go$`),
	}
}

// Excluded reports whether file is left out of the totals.
func (e Excluder) Excluded(file string) bool {
	for _, re := range e {
		if re.MatchString(file) {
			return true
		}
	}
	return false
}

// ByPackage sums blocks per package (the directory of the file), sorted by name.
func ByPackage(blocks []Block, ex Excluder) []PackageCoverage {
	m := map[string]*PackageCoverage{}
	for _, b := range blocks {
		if ex.Excluded(b.File) {
			continue
		}
		pkg := path.Dir(b.File)
		pc, ok := m[pkg]
		if !ok {
			pc = &PackageCoverage{Package: pkg}
			m[pkg] = pc
		}
		pc.Statements += b.Statements
		if b.Count > 0 {
			pc.Covered += b.Statements
		}
	}
	out := make([]PackageCoverage, 0, len(m))
	for _, pc := range m {
		out = append(out, *pc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Package < out[j].Package })
	return out
}

// Sum adds up a set of packages into one line named name.
func Sum(name string, pkgs []PackageCoverage) PackageCoverage {
	total := PackageCoverage{Package: name}
	for _, p := range pkgs {
		total.Statements += p.Statements
		total.Covered += p.Covered
	}
	return total
}

// Gate is a minimum coverage for the packages under a module-relative prefix
// ("" = every package).
type Gate struct {
	Name    string
	Prefix  string
	Minimum float64
}

// Result is the outcome of one gate.
type Result struct {
	Gate     Gate
	Coverage PackageCoverage
}

// Passed reports whether the gate's minimum was met.
func (r Result) Passed() bool { return r.Coverage.Percent() >= r.Gate.Minimum }

// Check evaluates gates over pkgs; module is the module path stripped from
// package names before matching prefixes.
func Check(module string, pkgs []PackageCoverage, gates []Gate) []Result {
	out := make([]Result, 0, len(gates))
	for _, g := range gates {
		var sel []PackageCoverage
		for _, p := range pkgs {
			rel := strings.TrimPrefix(strings.TrimPrefix(p.Package, module), "/")
			if g.Prefix == "" || rel == strings.TrimSuffix(g.Prefix, "/") || strings.HasPrefix(rel, g.Prefix) {
				sel = append(sel, p)
			}
		}
		out = append(out, Result{Gate: g, Coverage: Sum(g.Name, sel)})
	}
	return out
}

// Main is the covergate command: it prints the per-package table and the
// gates, and returns 1 when a gate fails, 2 on usage or input errors.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("covergate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	profile := fs.String("profile", "coverage.out", "coverage profile written by go test -coverprofile")
	module := fs.String("module", "github.com/tasker-systems/tasker-go", "module path")
	minDomain := fs.Float64("min-domain", 90, "minimum coverage of domain/")
	minApp := fs.Float64("min-app", 90, "minimum coverage of app/")
	minTotal := fs.Float64("min-total", 80, "minimum overall coverage")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	f, err := os.Open(*profile)
	if err != nil {
		fmt.Fprintf(stderr, "covergate: %v\n", err)
		return 2
	}
	defer f.Close()
	blocks, err := ParseProfile(f)
	if err != nil {
		fmt.Fprintf(stderr, "covergate: %v\n", err)
		return 2
	}
	pkgs := ByPackage(blocks, DefaultExcluder())
	fmt.Fprintf(stdout, "%-64s %8s %8s\n", "package", "stmts", "cover")
	for _, p := range pkgs {
		fmt.Fprintf(stdout, "%-64s %8d %7.1f%%\n", strings.TrimPrefix(p.Package, *module+"/"), p.Statements, p.Percent())
	}
	results := Check(*module, pkgs, []Gate{
		{Name: "domain/", Prefix: "domain/", Minimum: *minDomain},
		{Name: "app/", Prefix: "app/", Minimum: *minApp},
		{Name: "total", Prefix: "", Minimum: *minTotal},
	})
	failed := false
	fmt.Fprintln(stdout)
	for _, r := range results {
		verdict := "ok"
		if !r.Passed() {
			verdict, failed = "FAIL", true
		}
		fmt.Fprintf(stdout, "coverage gate %-8s %6.1f%% (minimum %.0f%%, %d statements) %s\n", r.Gate.Name, r.Coverage.Percent(), r.Gate.Minimum, r.Coverage.Statements, verdict)
	}
	if failed {
		return 1
	}
	return 0
}
