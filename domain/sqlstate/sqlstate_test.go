package sqlstate_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain/sqlstate"
)

type dbError string

func (e dbError) Error() string    { return "db error " + string(e) }
func (e dbError) SQLState() string { return string(e) }

func TestPermanent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"numeric value out of range (priority 3000000000)", dbError("22003"), true},
		{"invalid text representation", dbError("22P02"), true},
		{"not null violation", dbError("23502"), true},
		{"unique violation, wrapped", fmt.Errorf("create task: %w", dbError("23505")), true},
		{"serialization failure", dbError("40001"), false},
		{"deadlock", dbError("40P01"), false},
		{"admin shutdown", dbError("57P01"), false},
		{"connection failure", dbError("08006"), false},
		{"no SQLSTATE", errors.New("connection reset by peer"), false},
		{"malformed code", dbError("22"), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, sqlstate.Permanent(tt.err))
		})
	}
}
