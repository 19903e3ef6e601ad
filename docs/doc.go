// Package docs holds the project's documentation (Markdown) and the tests
// that keep it true: every relative link resolves inside the repository,
// the template reference names every key the template decoder knows and its
// examples validate, and the contract page lists every error code the
// orchestration API can answer. It has no code.
package docs
