package postgres

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestListFilter(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		values    []string
		wantWhere string
		wantLimit string
		wantArgs  []any
	}{
		{name: "no condition", values: []string{"", ""},
			wantWhere: "", wantLimit: " LIMIT $1 OFFSET $2", wantArgs: []any{10, 20}},
		{name: "second only", values: []string{"", "b"},
			wantWhere: " WHERE y = $1", wantLimit: " LIMIT $2 OFFSET $3", wantArgs: []any{"b", 10, 20}},
		{name: "both", values: []string{"a", "b"},
			wantWhere: " WHERE x = $1 AND y = $2", wantLimit: " LIMIT $3 OFFSET $4", wantArgs: []any{"a", "b", 10, 20}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var lf listFilter
			lf.addIf("x = $%d", tc.values[0])
			lf.addIf("y = $%d", tc.values[1])
			require.Equal(t, tc.wantWhere, lf.where())
			filterArgs := len(lf.args)
			limit, args := lf.page(10, 20)
			require.Equal(t, tc.wantLimit, limit)
			require.Equal(t, tc.wantArgs, args)
			require.Len(t, lf.args, filterArgs, "page must leave the COUNT query's arguments as they were")
		})
	}
}
