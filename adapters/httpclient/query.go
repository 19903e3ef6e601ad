package httpclient

import (
	"net/url"
	"strconv"
)

// listQuery is the query string of a list call (tasks, DLQ entries,
// templates). A zero option is left out rather than sent as "" or 0, so
// that the server applies its own default: any value, the first page, the
// default page size.
type listQuery url.Values

// setStr sets k to v unless v is empty.
func (q listQuery) setStr(k, v string) {
	if v != "" {
		url.Values(q).Set(k, v)
	}
}

// setInt sets k to v unless v is 0.
func (q listQuery) setInt(k string, v int) {
	if v != 0 {
		url.Values(q).Set(k, strconv.Itoa(v))
	}
}
