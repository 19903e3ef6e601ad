package httpclient

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestListQueryLeavesZeroOptionsOut(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		set  func(q listQuery)
		want string
	}{
		{name: "all zero", set: func(q listQuery) {
			q.setInt("page", 0)
			q.setStr("status", "")
		}, want: ""},
		{name: "some set", set: func(q listQuery) {
			q.setInt("page", 2)
			q.setInt("per_page", 0)
			q.setStr("reason", "")
			q.setStr("status", "open")
		}, want: "page=2&status=open"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q := listQuery{}
			tc.set(q)
			require.Equal(t, tc.want, url.Values(q).Encode())
		})
	}
}
