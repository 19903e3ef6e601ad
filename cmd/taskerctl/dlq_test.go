package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	entryUUID = "0190f0b2-6c1a-7000-8000-0000000000e1"
	entryJSON = `{"entry_uuid":"` + entryUUID + `","task_uuid":"` + taskUUID + `","step_uuid":"0190f0b2-6c1a-7000-8000-0000000000a1",` +
		`"namespace":"nobody","reason":"enqueued_timeout","status":"%s","detail":"no claim","queue_name":null,"message":null,` +
		`"resolution_note":%s,"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z"}`
)

func entryReply(status, note string) string {
	return "200 " + strings.Replace(strings.Replace(entryJSON, "%s", status, 1), "%s", note, 1)
}

func TestDLQCommands(t *testing.T) {
	t.Parallel()
	o := newOrchestration(t).
		on("GET /v1/dlq", `200 {"entries":[`+strings.TrimPrefix(entryReply("open", "null"), "200 ")+
			`],"pagination":{"page":1,"per_page":25,"total_count":1,"total_pages":1,"has_next":false,"has_previous":false}}`).
		on("GET /v1/dlq/"+entryUUID, entryReply("open", "null")).
		on("POST /v1/dlq/"+entryUUID+"/requeue", entryReply("requeued", "null")).
		on("PATCH /v1/dlq/"+entryUUID, entryReply("resolved", `"fixed"`))
	tests := []struct {
		args  []string
		human []string
	}{
		{[]string{"dlq", "list", "--status", "open"}, []string{entryUUID + "  enqueued_timeout  open    nobody", "page 1 of 1 (1 entries)"}},
		{[]string{"dlq", "show", entryUUID}, []string{"reason:", "enqueued_timeout", "detail:", "no claim"}},
		{[]string{"dlq", "requeue", entryUUID}, []string{"status:", "requeued"}},
		{[]string{"dlq", "resolve", entryUUID, "--note", "fixed"}, []string{"resolved", "note:", "fixed"}},
	}
	for _, tt := range tests {
		r := o.run(t, tt.args...)
		require.Equal(t, 0, r.code, "%v: %s", tt.args, r.stderr)
		for _, h := range tt.human {
			require.Contains(t, r.stdout, h, "%v", tt.args)
		}
		r = o.run(t, append(tt.args, "-o", "json")...)
		require.Equal(t, 0, r.code, r.stderr)
		var v map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &v), r.stdout)
	}
	require.Contains(t, o.bodies, `{"note":"fixed","status":"resolved"}`)
	for _, bad := range [][]string{{"dlq", "show", "nope"}, {"dlq", "list", "--reason", "bogus"}, {"dlq", "resolve", entryUUID},
		{"dlq", "requeue"}, {"dlq", "list", "--per-page", "0"}} {
		r := o.run(t, bad...)
		require.Equal(t, 2, r.code, "%v: %s", bad, r.stderr)
	}
	o.on("POST /v1/dlq/"+entryUUID+"/requeue", `400 {"error":{"code":"BAD_REQUEST","message":"only open entries can be requeued"}}`)
	r := o.run(t, "dlq", "requeue", entryUUID)
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "only open entries")
}
