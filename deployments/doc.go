// Package deployments holds the container and Kubernetes manifests
// (Dockerfile, docker-compose.yml, k8s/). It has no code: its test parses
// every manifest and checks it against the build, the configuration schema
// and the services' shutdown timeouts, because no Docker engine or cluster
// runs in CI.
package deployments
