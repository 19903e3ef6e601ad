package testdb

import (
	"context"
	"fmt"
	"time"

	"github.com/testcontainers/testcontainers-go/modules/postgres"
)

// containerImage matches the server version the project targets.
const containerImage = "postgres:15-alpine"

// startContainer starts a throwaway Postgres with testcontainers and returns its
// DSN. The container lives as long as the test process (testcontainers' reaper
// removes it). Without a container runtime it fails within seconds; a panic in the
// runtime probing is turned into an error so that the test skips or fails cleanly.
func startContainer() (dsn string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("testcontainers: %v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := postgres.Run(ctx, containerImage,
		postgres.WithDatabase("tasker_test"),
		postgres.WithUsername("postgres"),
		postgres.WithPassword("postgres"),
		postgres.BasicWaitStrategies(),
	)
	if err != nil {
		return "", fmt.Errorf("testcontainers: %w", err)
	}
	return c.ConnectionString(ctx, "sslmode=disable")
}
