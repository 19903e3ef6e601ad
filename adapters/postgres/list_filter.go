package postgres

import (
	"fmt"
	"slices"
	"strings"
)

// listFilter is the WHERE clause of a filtered, paginated list query and its
// positional arguments. The list endpoints filter on any combination of
// optional fields, so a condition's placeholder number depends on which
// conditions came before it; listFilter numbers them as they are added,
// rather than each query counting $n by hand.
type listFilter struct {
	conds []string
	args  []any
}

// addIf adds cond, a condition with one %d for its placeholder number, with
// argument v, unless v is empty: an empty filter field means "any".
func (f *listFilter) addIf(cond, v string) {
	if v == "" {
		return
	}
	f.args = append(f.args, v)
	f.conds = append(f.conds, fmt.Sprintf(cond, len(f.args)))
}

// where is " WHERE c1 AND c2 …", or "" when no condition was added.
func (f *listFilter) where() string {
	if len(f.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(f.conds, " AND ")
}

// page returns the " LIMIT $n OFFSET $m" clause and the filter's arguments
// followed by limit and offset. f.args is left as it was, so the same
// filter can still run the page's COUNT query.
func (f *listFilter) page(limit, offset int) (string, []any) {
	args := append(slices.Clip(f.args), limit, offset)
	return fmt.Sprintf(" LIMIT $%d OFFSET $%d", len(args)-1, len(args)), args
}
