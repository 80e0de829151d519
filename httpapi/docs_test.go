package httpapi_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/httpapi"
	"github.com/jobgate/jobgate/httpapi/httpapitest"
)

// The contract is written twice: docs/api.md for people, openapi.json for
// machines. These tests catch drift between them and the code: the same
// endpoints in the router, the OpenAPI document and the page's endpoint
// table, and the same problem types in the code, the OpenAPI document and
// the page's problem table.

// mustRead reads a file of the repository, relative to httpapi/.
// docPages are the README and the pages of docs/.
func docPages(tb testing.TB) []string {
	tb.Helper()
	pages, err := filepath.Glob("../docs/*.md")
	require.NoError(tb, err)
	return append(pages, "../README.md")
}

// repoFiles are the paths of the repository's files under root, outside
// .git, node_modules and any directory named in skip.
func repoFiles(tb testing.TB, root string, skip ...string) []string {
	tb.Helper()
	var files []string
	require.NoError(tb, filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || slices.Contains(skip, d.Name())):
			return filepath.SkipDir
		case !d.IsDir():
			files = append(files, path)
		}
		return nil
	}))
	return files
}

func mustRead(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.FromSlash(path))
	require.NoError(tb, err)
	return string(b)
}

// section is the text of the markdown section under heading, up to the
// next heading of the same or a higher level.
func section(tb testing.TB, doc, heading string) string {
	tb.Helper()
	level := strings.Index(heading, " ")
	start := strings.Index(doc, "\n"+heading+"\n")
	require.GreaterOrEqual(tb, start, 0, "docs/api.md has no section %q", heading)
	rest := doc[start+len(heading)+2:]
	for _, line := range regexp.MustCompile(`(?m)^#{1,6} `).FindAllStringIndex(rest, -1) {
		if line[1]-line[0]-1 <= level {
			return rest[:line[0]]
		}
	}
	return rest
}

// tableColumn is the first column of every row of the markdown tables in
// text, without its backquotes.
func tableColumn(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cell := strings.TrimSpace(strings.Split(line, "|")[1])
		out = append(out, strings.Trim(cell, "`"))
	}
	return out
}

type endpoint struct{ method, path string }

func (e endpoint) String() string { return e.method + " " + e.path }

// openAPIEndpoints lists the operations of httpapi/openapi.json.
func openAPIEndpoints(tb testing.TB) []endpoint {
	tb.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(tb, json.Unmarshal(httpapi.OpenAPI, &doc))
	var out []endpoint
	for path, ops := range doc.Paths {
		for m := range ops {
			switch m {
			case "get", "post", "put", "patch", "delete":
				out = append(out, endpoint{strings.ToUpper(m), path})
			}
		}
	}
	return out
}

func TestAPIDocNamesEveryEndpoint(t *testing.T) {
	t.Parallel()
	srv := httpapitest.NewServer(t, httpapi.Config{})
	routes, err := srv.API.Routes()
	require.NoError(t, err)

	var documented []endpoint
	for _, cell := range tableColumn(section(t, mustRead(t, "../docs/api.md"), "## Endpoints")) {
		method, path, ok := strings.Cut(cell, " ")
		require.True(t, ok, "docs/api.md, Endpoints: %q is not `METHOD /path`", cell)
		path, _, _ = strings.Cut(path, "?")
		documented = append(documented, endpoint{method, path})
	}
	inOpenAPI := openAPIEndpoints(t)

	var routed []endpoint
	for _, r := range routes {
		if r.Method == http.MethodHead {
			continue // documented with its GET
		}
		e := endpoint{r.Method, r.Path}
		routed = append(routed, e)
		require.Contains(t, documented, e, "%s is routed (routes.go) but not in the Endpoints table of docs/api.md", e)
		require.Contains(t, inOpenAPI, e, "%s is routed (routes.go) but not in httpapi/openapi.json", e)
	}
	for _, e := range documented {
		require.Contains(t, routed, e, "docs/api.md lists %s, which routes.go does not route", e)
	}
	for _, e := range inOpenAPI {
		require.Contains(t, routed, e, "httpapi/openapi.json has %s, which routes.go does not route", e)
	}
}

// problemTypesInCode are the problem type names the HTTP layer's source
// writes: problem(status, "name", …), badRequest("name", …) and
// ProblemBase + "name".
func problemTypesInCode(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob("*.go")
	require.NoError(tb, err)
	re := regexp.MustCompile(`(?:problem\([^,()]+, "|badRequest\("|ProblemBase \+ "|name, title := ")([a-z-]+)"`)
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		for _, m := range re.FindAllStringSubmatch(mustRead(tb, f), -1) {
			out = append(out, m[1])
		}
	}
	// A job's own error: job-failed above, job-canceled beside it.
	if slices.Contains(out, "job-failed") {
		out = append(out, "job-canceled")
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestAPIDocListsEveryProblemType(t *testing.T) {
	t.Parallel()
	doc := mustRead(t, "../docs/api.md")
	errorsSection := section(t, doc, "## Errors")
	documented := tableColumn(errorsSection)
	require.NotEmpty(t, documented)
	for _, name := range []string{"job-failed", "job-canceled", "attempt-failed"} {
		require.Contains(t, errorsSection, "`"+name+"`", "docs/api.md, Errors, must name the job error type %s", name)
		documented = append(documented, name)
	}
	inOpenAPI := map[string]bool{}
	for _, m := range regexp.MustCompile(`problems/([a-z-]+)`).FindAllStringSubmatch(string(httpapi.OpenAPI), -1) {
		inOpenAPI[m[1]] = true
	}

	code := problemTypesInCode(t)
	require.Contains(t, code, "not-found", "the scan of httpapi's source found no problem types; has the way problems are built changed?")
	for _, name := range code {
		if name == "client-closed" {
			continue // answered to a client that went away: nobody reads it
		}
		require.Contains(t, documented, name, "httpapi writes the problem type %s, which the Errors section of docs/api.md does not list", name)
		require.True(t, inOpenAPI[name], "httpapi writes the problem type %s, which httpapi/openapi.json does not list", name)
	}
	for _, name := range documented {
		require.Contains(t, code, name, "docs/api.md lists the problem type %s, which httpapi never writes", name)
	}
	for name := range inOpenAPI {
		require.Contains(t, code, name, "httpapi/openapi.json lists the problem type %s, which httpapi never writes", name)
	}
}

// Every relative link in the README and docs/ names a file of the
// repository, and every #anchor a heading of it: a reader following the
// docs never lands outside the repository or nowhere.
func TestDocLinksResolve(t *testing.T) {
	t.Parallel()
	pages := docPages(t)
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	for _, page := range pages {
		text := mustRead(t, page)
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			path := page
			if file != "" {
				path = filepath.Join(filepath.Dir(page), filepath.FromSlash(file))
				abs, err := filepath.Abs(path)
				require.NoError(t, err)
				require.True(t, strings.HasPrefix(abs, root+string(filepath.Separator)), "%s links to %s, outside the repository", page, target)
				_, err = os.Stat(path)
				require.NoError(t, err, "%s links to %s, which does not exist", page, target)
			}
			if anchor != "" {
				require.Contains(t, anchors(mustRead(t, path)), anchor, "%s links to %s: %s has no such heading", page, target, path)
			}
		}
	}
}

// anchors are the GitHub anchors of a markdown page's headings.
func anchors(doc string) []string {
	var out []string
	drop := regexp.MustCompile(`[^\p{L}\p{N} _-]`)
	for _, m := range regexp.MustCompile(`(?m)^#{1,6} (.+)$`).FindAllStringSubmatch(doc, -1) {
		s := drop.ReplaceAllString(strings.ToLower(m[1]), "")
		out = append(out, strings.ReplaceAll(s, " ", "-"))
	}
	return out
}

// Every repository path the README and docs/ name in code (a span or a
// command block: `e2e/docs_test.go`, `go run ./cmd/jobgate`) exists, and
// every test, benchmark, fuzz target or example they name by its function
// name is declared in a _test.go file of the repository: a reader sent to
// a file or told to run a test finds it. (Links are TestDocLinksResolve's.)
func TestDocNamedPathsAndTestsExist(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	// The repository's top-level directories, so that `application/json`
	// or `/v1/jobs` are not taken for paths.
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	var tops []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			tops = append(tops, regexp.QuoteMeta(e.Name()))
		}
	}
	pathRe := regexp.MustCompile(`(?:^|[^\w/.@-])(?:\./)?((?:` + strings.Join(tops, "|") + `)/[\w./*-]*)`)
	testRe := regexp.MustCompile(`\b(?:Test|Benchmark|Fuzz|Example)[A-Z_]\w*`)
	codeRe := regexp.MustCompile("(?s)```.*?```|`[^`\n]+`")

	declared := map[string]bool{}
	funcRe := regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz|Example)\w*)\(`)
	for _, path := range repoFiles(t, root) {
		if strings.HasSuffix(path, "_test.go") {
			for _, m := range funcRe.FindAllStringSubmatch(mustRead(t, path), -1) {
				declared[m[1]] = true
			}
		}
	}
	require.NotEmpty(t, declared)

	pages := docPages(t)
	checked := 0
	for _, page := range pages {
		for _, code := range codeRe.FindAllString(mustRead(t, page), -1) {
			for _, m := range pathRe.FindAllStringSubmatch(code, -1) {
				p := strings.TrimSuffix(strings.TrimRight(m[1], "."), "/...")
				matches, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(strings.TrimSuffix(p, "/"))))
				require.NoError(t, err)
				require.NotEmpty(t, matches, "%s names %s, which is not in the repository", page, p)
				checked++
			}
			for _, name := range testRe.FindAllString(code, -1) {
				require.True(t, declared[name], "%s names %s, which no _test.go file of the repository declares", page, name)
				checked++
			}
		}
	}
	require.Greater(t, checked, 20, "the docs name repository paths and tests")
}

// Every Go and TypeScript fragment of the README and docs/ is code the
// repository has: its lines, in order, are lines of one .go or .ts file
// ("…" alone on a line elides whole lines, within a line any text). A Go
// fragment that is a whole file (it starts with package) is built by the
// test that names it (TestDocsOwnModule, TestDocsExternalGoWorker). So a
// fragment cannot show an API that changed: the Go files compile, the
// TypeScript worker runs in TestExternalKindTypeScript.
func TestDocCodeFragmentsAreInTheRepository(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	exts := map[string]string{"go": ".go", "ts": ".ts", "typescript": ".ts"}
	files := map[string]map[string][]string{".go": {}, ".ts": {}}
	ignored := regexp.MustCompile(`(?m)^//go:build ignore$`)
	for _, path := range repoFiles(t, root, "testdata") {
		if of, ok := files[filepath.Ext(path)]; ok {
			src := mustRead(t, path)
			if filepath.Ext(path) == ".go" && ignored.MatchString(src) {
				continue // not compiled
			}
			of[path] = codeLines(src)
		}
	}
	pages := docPages(t)
	checked := map[string]int{}
	for _, page := range pages {
		for _, m := range regexp.MustCompile("(?ms)^[ \t]*```(go|ts|typescript)[ \t]*\r?\n(.*?)\r?\n[ \t]*```").FindAllStringSubmatch(mustRead(t, page), -1) {
			fragment := codeLines(m[2])
			if !slices.ContainsFunc(fragment, func(l string) bool { return l != "…" }) {
				t.Errorf("%s: a %s fragment with no code in it:\n%s", page, m[1], m[2])
				continue
			}
			if m[1] == "go" && len(fragment) > 0 && strings.HasPrefix(fragment[0], "package ") {
				continue
			}
			in := fragmentMatcher(fragment)
			found := false
			for _, lines := range files[exts[m[1]]] {
				if found = in(lines); found {
					break
				}
			}
			if !found {
				t.Errorf("%s: this %s fragment is not in any %s file of the repository (as its lines in order):\n%s", page, m[1], exts[m[1]], m[2])
			}
			checked[m[1]]++
		}
	}
	require.Greater(t, checked["go"], 5, "the docs have Go fragments")
	require.Positive(t, checked["ts"], "the docs have TypeScript fragments")
}

// codeLines are src's lines without comments, trimmed, without blank
// ones: a fragment's comments explain it to the reader, the file's its
// code to its maintainers.
func codeLines(src string) []string {
	var out []string
	for _, l := range strings.Split(src, "\n") {
		if l = strings.TrimSpace(withoutComment(l)); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// withoutComment is line without a // comment outside string literals.
func withoutComment(line string) string {
	var quote rune
	prev := rune(0)
	for i, r := range line {
		switch {
		case quote != 0:
			if r == quote && (prev != '\\' || quote == '`') {
				quote = 0
			}
		case r == '"' || r == '`' || r == '\'':
			quote = r
		case r == '/' && prev == '/':
			return line[:i-1]
		}
		if prev == '\\' && r == '\\' {
			r = 0 // an escaped backslash escapes nothing after it
		}
		prev = r
	}
	return line
}

// fragmentMatcher reports whether a file's lines hold the fragment's, in
// order: consecutive ones, except across an elision ("…" alone on a line,
// any number of lines; "…" within a line, any text).
func fragmentMatcher(fragment []string) func(file []string) bool {
	// Runs of the fragment between elided lines, each found consecutively
	// after the previous one; a line with "…" in it is a pattern.
	var runs [][]func(string) bool
	var run []func(string) bool
	for _, l := range fragment {
		switch {
		case l == "…":
			runs, run = append(runs, run), nil
		case strings.Contains(l, "…"):
			parts := strings.Split(l, "…")
			for j := range parts {
				parts[j] = regexp.QuoteMeta(parts[j])
			}
			run = append(run, regexp.MustCompile("^"+strings.Join(parts, ".*")+"$").MatchString)
		default:
			run = append(run, func(fl string) bool { return fl == l })
		}
	}
	runs = append(runs, run)
	return func(file []string) bool {
		at := 0
		for _, r := range runs {
			if len(r) == 0 {
				continue
			}
			next := -1
			for i := at; i+len(r) <= len(file) && next < 0; i++ {
				if linesMatch(file[i:i+len(r)], r) {
					next = i + len(r)
				}
			}
			if next < 0 {
				return false
			}
			at = next
		}
		return true
	}
}

func linesMatch(file []string, run []func(string) bool) bool {
	for i, match := range run {
		if !match(file[i]) {
			return false
		}
	}
	return true
}
