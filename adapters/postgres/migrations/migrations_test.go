package migrations_test

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres/migrations"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// emptyDB is a fresh database with nothing migrated.
func emptyDB(t *testing.T) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("postgres", testdb.EmptyURL(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func embeddedCount(t *testing.T) int {
	t.Helper()
	names, err := fs.Glob(migrations.FS(), "*.sql")
	require.NoError(t, err)
	require.NotEmpty(t, names)
	return len(names)
}

func TestApplyTwiceOnEmptyDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := emptyDB(t)

	applied, err := migrations.Migrate(ctx, db.DB)
	require.NoError(t, err)
	require.Len(t, applied, embeddedCount(t))
	require.Equal(t, "00001_uuid_v7.sql", applied[0].Name)

	again, err := migrations.Migrate(ctx, db.DB)
	require.NoError(t, err)
	require.Empty(t, again, "nothing pending the second time")

	// Forget the bookkeeping so every file runs again over its own objects: the SQL
	// itself must be idempotent, not just goose's version table.
	_, err = db.ExecContext(ctx, "DROP TABLE goose_db_version")
	require.NoError(t, err)
	rerun, err := migrations.Migrate(ctx, db.DB)
	require.NoError(t, err)
	require.Len(t, rerun, embeddedCount(t))

	status, err := migrations.StatusOf(ctx, db.DB)
	require.NoError(t, err)
	for _, s := range status {
		require.True(t, s.Applied, s.Name)
	}
	requireProjectPgmq(t, db)
}

func requireProjectPgmq(t *testing.T, db *sqlx.DB) {
	t.Helper()
	var comment sql.NullString
	require.NoError(t, db.Get(&comment, "SELECT obj_description('pgmq'::regnamespace, 'pg_namespace')"))
	require.Contains(t, comment.String, "tasker:")
	var staging bool
	require.NoError(t, db.Get(&staging, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'tasker_pgmq_install')"))
	require.False(t, staging, "staging schema removed")
}

func TestUUIDv7Default(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	before := time.Now().Add(-time.Second)
	var ids []uuid.UUID
	require.NoError(t, db.Select(&ids, "SELECT uuid_generate_v7() FROM generate_series(1, 200)"))
	after := time.Now().Add(time.Second)
	seen := map[uuid.UUID]bool{}
	var prev time.Time
	for _, id := range ids {
		require.Equal(t, uuid.Version(7), id.Version(), id.String())
		require.Equal(t, uuid.RFC4122, id.Variant(), id.String())
		sec, nsec := id.Time().UnixTime()
		ts := time.Unix(sec, nsec)
		require.True(t, ts.After(before) && ts.Before(after), "timestamp %s of %s", ts, id)
		require.False(t, ts.Before(prev), "time-ordered")
		prev = ts
		require.False(t, seen[id], "duplicate %s", id)
		seen[id] = true
	}
}

func TestExistingUUIDv7FunctionIsKept(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := emptyDB(t)
	const sentinel = "00000000-0000-7000-8000-000000000007"
	_, err := db.ExecContext(ctx, `CREATE FUNCTION public.uuid_generate_v7() RETURNS uuid
		LANGUAGE sql AS $$ SELECT '`+sentinel+`'::uuid $$`)
	require.NoError(t, err)
	require.NoError(t, migrations.Apply(ctx, db.DB))
	var got string
	require.NoError(t, db.Get(&got, "SELECT uuid_generate_v7()::text"))
	require.Equal(t, sentinel, got)
}

// A database that has the real pgmq (extension or reference) must keep it: the
// sentinel functions survive and none of the project's pgmq objects appear, while
// existing queue tables still get the headers column and the notify trigger.
func TestExistingPgmqIsLeftAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := emptyDB(t)
	_, err := db.ExecContext(ctx, `
		CREATE SCHEMA pgmq;
		CREATE TABLE pgmq.meta (queue_name varchar UNIQUE NOT NULL, is_partitioned bool NOT NULL,
			is_unlogged bool NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
		CREATE TABLE pgmq.q_legacy_queue (msg_id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
			read_ct int NOT NULL DEFAULT 0, enqueued_at timestamptz NOT NULL DEFAULT now(),
			vt timestamptz NOT NULL, message jsonb);
		CREATE TABLE pgmq.a_legacy_queue (msg_id bigint PRIMARY KEY, read_ct int NOT NULL DEFAULT 0,
			enqueued_at timestamptz NOT NULL DEFAULT now(), archived_at timestamptz NOT NULL DEFAULT now(),
			vt timestamptz NOT NULL, message jsonb);
		CREATE FUNCTION pgmq.read(queue_name text, vt integer, qty integer) RETURNS integer
			LANGUAGE sql AS $$ SELECT 42 $$;
		COMMENT ON FUNCTION pgmq.read(text, integer, integer) IS 'sentinel: real pgmq read';
		CREATE FUNCTION pgmq.send(queue_name text, msg jsonb) RETURNS bigint
			LANGUAGE sql AS $$ SELECT 4242::bigint $$;`)
	require.NoError(t, err)

	require.NoError(t, migrations.Apply(ctx, db.DB))
	require.NoError(t, migrations.Apply(ctx, db.DB))

	var comment string
	require.NoError(t, db.Get(&comment, "SELECT obj_description('pgmq.read(text,integer,integer)'::regprocedure, 'pg_proc')"))
	require.Equal(t, "sentinel: real pgmq read", comment)
	var readResult int
	require.NoError(t, db.Get(&readResult, "SELECT pgmq.read('x', 1, 1)"))
	require.Equal(t, 42, readResult)

	var ours int
	require.NoError(t, db.Get(&ours, `SELECT count(*) FROM pg_proc WHERE pronamespace = 'pgmq'::regnamespace
		AND proname IN ('create', 'archive', 'set_vt', 'metrics', 'validate_queue_name')`))
	require.Zero(t, ours, "project pgmq functions must not be installed over a real pgmq")
	var sends int
	require.NoError(t, db.Get(&sends, "SELECT count(*) FROM pg_proc WHERE pronamespace = 'pgmq'::regnamespace AND proname = 'send'"))
	require.Equal(t, 1, sends)
	var types int
	require.NoError(t, db.Get(&types, "SELECT count(*) FROM pg_type WHERE typnamespace = 'pgmq'::regnamespace AND typname IN ('message_record', 'metrics_result')"))
	require.Zero(t, types)
	var schemaComment sql.NullString
	require.NoError(t, db.Get(&schemaComment, "SELECT obj_description('pgmq'::regnamespace, 'pg_namespace')"))
	require.False(t, schemaComment.Valid)

	for _, tbl := range []string{"pgmq.q_legacy_queue", "pgmq.a_legacy_queue"} {
		var hasHeaders bool
		require.NoError(t, db.Get(&hasHeaders, `SELECT EXISTS (SELECT 1 FROM pg_attribute
			WHERE attrelid = $1::regclass AND attname = 'headers' AND NOT attisdropped)`, tbl))
		require.True(t, hasHeaders, tbl)
	}
	require.Equal(t, []string{"pgmq_message_ready_trigger_q_legacy_queue"}, triggersOn(t, db, "pgmq.q_legacy_queue"))
	require.Equal(t, []string{"pgmq_queue_created_trigger"}, triggersOn(t, db, "pgmq.meta"))

	// 00007 leaves such a database's message-ready triggers per row (the
	// reference's form), also for tables created later, and adds no function
	// beyond 00004's.
	require.Equal(t, []string{"ROW"}, triggerLevels(t, db, "pgmq.q_legacy_queue"))
	require.Contains(t, messageReadyComment(t, db), "FOR EACH ROW")
	_, err = db.ExecContext(ctx, `CREATE TABLE pgmq.q_later_legacy (msg_id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
		read_ct int NOT NULL DEFAULT 0, enqueued_at timestamptz NOT NULL DEFAULT now(), vt timestamptz NOT NULL, message jsonb)`)
	require.NoError(t, err)
	require.Equal(t, []string{"ROW"}, triggerLevels(t, db, "pgmq.q_later_legacy"))
	var publicFns []string
	require.NoError(t, db.Select(&publicFns, `SELECT proname FROM pg_proc
		WHERE pronamespace = 'public'::regnamespace AND proname LIKE 'pgmq%' ORDER BY proname`))
	require.Equal(t, []string{"pgmq_ensure_headers_column", "pgmq_ensure_message_ready_trigger",
		"pgmq_notify_message_ready", "pgmq_notify_queue_created", "pgmq_on_queue_table_created"}, publicFns)
}

// triggerLevels lists the level of each message-ready trigger on table, in name
// order: "STATEMENT" (with the new_messages transition table) or "ROW".
func triggerLevels(t *testing.T, db *sqlx.DB, table string) []string {
	t.Helper()
	var levels []string
	require.NoError(t, db.Select(&levels, `SELECT CASE
			WHEN tgtype = 4 AND tgnewtable = 'new_messages' THEN 'STATEMENT'
			WHEN tgtype = 5 AND tgnewtable IS NULL THEN 'ROW'
			ELSE 'tgtype ' || tgtype END
		FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal
		  AND tgfoid = 'public.pgmq_notify_message_ready()'::regprocedure ORDER BY tgname`, table))
	return levels
}

func messageReadyComment(t *testing.T, db *sqlx.DB) string {
	t.Helper()
	var comment sql.NullString
	require.NoError(t, db.Get(&comment, `SELECT obj_description('public.pgmq_notify_message_ready()'::regprocedure, 'pg_proc')`))
	return comment.String
}

// On the project's database every message-ready trigger is per statement: those
// of queues made by pgmq.create or by a plain CREATE TABLE (the event trigger), and
// those pgmq_ensure_message_ready_trigger attaches.
func TestMessageReadyTriggersArePerStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	require.Contains(t, messageReadyComment(t, db), "FOR EACH STATEMENT")
	_, err := db.ExecContext(ctx, `
		SELECT pgmq.create('stmt_queue');
		CREATE TABLE pgmq.q_stmt_manual (msg_id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
			read_ct int NOT NULL DEFAULT 0, enqueued_at timestamptz NOT NULL DEFAULT now(),
			vt timestamptz NOT NULL, message jsonb);`)
	require.NoError(t, err)
	require.Equal(t, []string{"pgmq_message_ready_trigger_q_stmt_queue"}, triggersOn(t, db, "pgmq.q_stmt_queue"))
	require.Equal(t, []string{"STATEMENT"}, triggerLevels(t, db, "pgmq.q_stmt_queue"))
	require.Equal(t, []string{"STATEMENT"}, triggerLevels(t, db, "pgmq.q_stmt_manual"))

	_, err = db.ExecContext(ctx, `DROP TRIGGER pgmq_message_ready_trigger_q_stmt_queue ON pgmq.q_stmt_queue`)
	require.NoError(t, err)
	var attached bool
	require.NoError(t, db.Get(&attached, "SELECT pgmq_ensure_message_ready_trigger('stmt_queue')"))
	require.True(t, attached)
	require.Equal(t, []string{"STATEMENT"}, triggerLevels(t, db, "pgmq.q_stmt_queue"))
	require.NoError(t, db.Get(&attached, "SELECT pgmq_ensure_message_ready_trigger('stmt_queue')"))
	require.False(t, attached, "already attached: idempotent")
}

// 00007 converts the row triggers that earlier migrations or services attached
// (whatever their name) to the statement form with the standard name, keeps the
// queues working, and a rerun changes nothing.
func TestMigrationConvertsRowTriggers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := emptyDB(t)
	require.NoError(t, migrations.Apply(ctx, db.DB))
	_, err := db.ExecContext(ctx, `
		SELECT pgmq.create('conv_queue');
		SELECT pgmq.create('conv_other_queue');
		DROP TRIGGER pgmq_message_ready_trigger_q_conv_queue ON pgmq.q_conv_queue;
		CREATE TRIGGER pgmq_message_ready_trigger_q_conv_queue AFTER INSERT ON pgmq.q_conv_queue
			FOR EACH ROW EXECUTE FUNCTION public.pgmq_notify_message_ready();
		DROP TRIGGER pgmq_message_ready_trigger_q_conv_other_queue ON pgmq.q_conv_other_queue;
		CREATE TRIGGER some_other_name AFTER INSERT ON pgmq.q_conv_other_queue
			FOR EACH ROW EXECUTE FUNCTION public.pgmq_notify_message_ready();`)
	require.NoError(t, err)
	require.Equal(t, []string{"ROW"}, triggerLevels(t, db, "pgmq.q_conv_queue"))
	require.Equal(t, []string{"ROW"}, triggerLevels(t, db, "pgmq.q_conv_other_queue"))

	for range 2 {
		_, err = db.ExecContext(ctx, `DELETE FROM goose_db_version WHERE version_id = 7`)
		require.NoError(t, err)
		applied, err := migrations.Migrate(ctx, db.DB)
		require.NoError(t, err)
		require.Len(t, applied, 1)
		require.Equal(t, "00007_pgmq_notify_per_statement.sql", applied[0].Name)
		for _, q := range []string{"conv_queue", "conv_other_queue"} {
			require.Equal(t, []string{"pgmq_message_ready_trigger_q_" + q}, triggersOn(t, db, "pgmq.q_"+q))
			require.Equal(t, []string{"STATEMENT"}, triggerLevels(t, db, "pgmq.q_"+q))
		}
	}
	var ids []int64
	require.NoError(t, db.Select(&ids, `SELECT pgmq.send_batch('conv_queue'::text, ARRAY['{}','{}']::jsonb[])`))
	require.Equal(t, []int64{1, 2}, ids)
}

func triggersOn(t *testing.T, db *sqlx.DB, table string) []string {
	t.Helper()
	var names []string
	require.NoError(t, db.Select(&names, `SELECT tgname FROM pg_trigger
		WHERE tgrelid = $1::regclass AND NOT tgisinternal ORDER BY tgname`, table))
	return names
}

func TestEmptyPgmqSchemaGetsProjectImplementation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := emptyDB(t)
	_, err := db.ExecContext(ctx, "CREATE SCHEMA pgmq")
	require.NoError(t, err)
	require.NoError(t, migrations.Apply(ctx, db.DB))
	requireProjectPgmq(t, db)
	_, err = db.ExecContext(ctx, "SELECT pgmq.create('moved_queue')")
	require.NoError(t, err)
	var id int64
	require.NoError(t, db.Get(&id, "SELECT pgmq.send('moved_queue'::text, '{}'::jsonb)"))
	require.Equal(t, int64(1), id)
}

// Tables created after the migration (by our pgmq.create or directly, as the real
// extension's create does) get the headers column and the message-ready trigger
// from the event trigger.
func TestQueueTablesCreatedLaterAreAttached(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	_, err := db.ExecContext(ctx, `
		SELECT pgmq.create('later_queue');
		CREATE TABLE pgmq.q_manual (msg_id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
			read_ct int NOT NULL DEFAULT 0, enqueued_at timestamptz NOT NULL DEFAULT now(),
			vt timestamptz NOT NULL, message jsonb);
		CREATE TABLE public.not_a_queue (id int);`)
	require.NoError(t, err)
	require.Equal(t, []string{"pgmq_message_ready_trigger_q_later_queue"}, triggersOn(t, db, "pgmq.q_later_queue"))
	require.Equal(t, []string{"pgmq_message_ready_trigger_q_manual"}, triggersOn(t, db, "pgmq.q_manual"))
	require.Empty(t, triggersOn(t, db, "public.not_a_queue"))
	var hasHeaders bool
	require.NoError(t, db.Get(&hasHeaders, `SELECT EXISTS (SELECT 1 FROM pg_attribute
		WHERE attrelid = 'pgmq.q_manual'::regclass AND attname = 'headers')`))
	require.True(t, hasHeaders)

	var attached bool
	require.NoError(t, db.Get(&attached, "SELECT pgmq_ensure_message_ready_trigger('later_queue')"))
	require.False(t, attached, "already attached: idempotent")
	require.Len(t, triggersOn(t, db, "pgmq.q_later_queue"), 1)
}

func TestQueueNameValidation(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cases := []struct{ name, queue, want string }{
		{"upper case", "Bad", "must match ^[a-z0-9_]+$"},
		{"dash", "a-b", "must match ^[a-z0-9_]+$"},
		{"injection", "x; DROP TABLE pgmq.meta", "must match ^[a-z0-9_]+$"},
		{"empty", "", "must match ^[a-z0-9_]+$"},
		{"48 chars", "a123456789012345678901234567890123456789012345678"[:48], "longer than 47 characters"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := db.Exec("SELECT pgmq.create($1)", tc.queue)
			require.ErrorContains(t, err, tc.want)
			_, err = db.Exec("SELECT pgmq.send($1::text, '{}'::jsonb)", tc.queue)
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := db.Exec("SELECT pgmq.create($1)", "a123456789012345678901234567890123456789012345678"[:47])
	require.NoError(t, err, "47 characters is the limit, inclusive")
	var metaRows int
	require.NoError(t, db.Get(&metaRows, "SELECT count(*) FROM pgmq.meta"))
	require.Equal(t, 1, metaRows)
}

// Without superuser rights the event trigger cannot be created: the migration
// still succeeds (with a warning) and services attach on create instead (D-h).
func TestMigrateAsDatabaseOwnerWithoutSuperuser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := emptyDB(t)
	role := fmt.Sprintf("tasker_owner_%d_test", os.Getpid())
	dbName := role + "_db"
	_, err := admin.ExecContext(ctx, "CREATE ROLE "+role+" LOGIN NOSUPERUSER")
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := admin.Exec("DROP ROLE IF EXISTS " + role)
		require.NoError(t, err)
	})
	_, err = admin.ExecContext(ctx, "CREATE DATABASE "+dbName+" OWNER "+role+" TEMPLATE template0")
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := admin.Exec("DROP DATABASE IF EXISTS " + dbName + " WITH (FORCE)")
		require.NoError(t, err)
	})

	u, err := url.Parse(testdb.EmptyURL(t))
	require.NoError(t, err)
	u.User = url.User(role)
	u.Path = "/" + dbName
	db, err := sqlx.Open("postgres", u.String())
	require.NoError(t, err)
	defer db.Close()

	require.NoError(t, migrations.Apply(ctx, db.DB))
	var eventTriggers int
	require.NoError(t, db.Get(&eventTriggers, "SELECT count(*) FROM pg_event_trigger"))
	require.Zero(t, eventTriggers)

	_, err = db.ExecContext(ctx, "SELECT pgmq.create('owner_queue')")
	require.NoError(t, err)
	require.Empty(t, triggersOn(t, db, "pgmq.q_owner_queue"), "no event trigger, nothing attached yet")
	var attached bool
	require.NoError(t, db.Get(&attached, "SELECT pgmq_ensure_message_ready_trigger('owner_queue')"))
	require.True(t, attached)
	require.Equal(t, []string{"pgmq_message_ready_trigger_q_owner_queue"}, triggersOn(t, db, "pgmq.q_owner_queue"))
	require.Equal(t, []string{"STATEMENT"}, triggerLevels(t, db, "pgmq.q_owner_queue"))
}

// The project's pgmq gets one static (planned-once) branch per queue in its
// hot functions: creating a queue adds it, dropping it removes it, and names
// without a branch still work through the dynamic statement.
func TestStaticDispatchFollowsQueues(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	hot := []string{"pgmq.send(text,jsonb,jsonb,timestamptz)", "pgmq.send_batch(text,jsonb[],jsonb[],timestamptz)",
		"pgmq.read(text,integer,integer,jsonb)", "pgmq.delete(text,bigint[])", "pgmq.set_vt(text,bigint,integer)"}
	branches := func() int {
		n := 0
		for _, fn := range hot {
			var def string
			require.NoError(t, db.Get(&def, "SELECT pg_get_functiondef($1::regprocedure)", fn))
			if strings.Contains(def, "pgmq.q_disp_queue") {
				n++
			}
		}
		return n
	}
	require.Zero(t, branches())
	_, err := db.Exec("SELECT pgmq.create('disp_queue')")
	require.NoError(t, err)
	require.Equal(t, len(hot), branches(), "every hot function has a branch for the new queue")
	_, err = db.Exec("SELECT pgmq.create('disp_queue')")
	require.NoError(t, err, "creating again is idempotent")

	var ids []int64
	require.NoError(t, db.Select(&ids, `SELECT pgmq.send_batch('disp_queue'::text, ARRAY['{"n":1}','{"n":2}']::jsonb[], 0::integer)`))
	require.Equal(t, []int64{1, 2}, ids)
	var one int64
	require.NoError(t, db.Get(&one, `SELECT pgmq.send('disp_queue'::text, '{"n":3}'::jsonb, '{"h":1}'::jsonb, 0::integer)`))
	require.Equal(t, int64(3), one)
	var read []struct {
		MsgID  int64  `db:"msg_id"`
		ReadCt int    `db:"read_ct"`
		Msg    string `db:"message"`
	}
	require.NoError(t, db.Select(&read, `SELECT msg_id, read_ct, message::text FROM pgmq.read('disp_queue', 30, 2, '{"n":2}')`))
	require.Len(t, read, 1, "conditional read")
	require.Equal(t, int64(2), read[0].MsgID)
	require.NoError(t, db.Select(&read, `SELECT msg_id, read_ct, message::text FROM pgmq.read('disp_queue', 30, 5)`))
	require.Len(t, read, 2, "message 2 is invisible for 30 s")
	var vtID int64
	require.NoError(t, db.Get(&vtID, `SELECT msg_id FROM pgmq.set_vt('disp_queue', 2, 0)`))
	require.Equal(t, int64(2), vtID)
	require.NoError(t, db.Select(&read, `SELECT msg_id, read_ct, message::text FROM pgmq.read('disp_queue', 30, 5)`))
	require.Len(t, read, 1, "set_vt made message 2 visible again")
	require.Equal(t, 2, read[0].ReadCt)
	require.NoError(t, db.Select(&ids, `SELECT pgmq.delete('disp_queue'::text, ARRAY[1,2,3]::bigint[])`))
	require.ElementsMatch(t, []int64{1, 2, 3}, ids)

	var dropped bool
	require.NoError(t, db.Get(&dropped, "SELECT pgmq.drop_queue('disp_queue')"))
	require.True(t, dropped)
	require.Zero(t, branches(), "a dropped queue leaves the dispatch")
	_, err = db.Exec(`SELECT pgmq.send('disp_queue'::text, '{}'::jsonb)`)
	require.ErrorContains(t, err, "does not exist", "the dynamic path reports the missing table")
}

// The delegating overloads on the services' hot paths are PL/pgSQL (planned
// once per session) and keep pgmq's results: ids, delays, booleans.
func TestDelegatingOverloadsArePlpgsql(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	_, err := db.Exec("SELECT pgmq.create('wrap_queue')")
	require.NoError(t, err)
	var langs []string
	require.NoError(t, db.Select(&langs, `SELECT DISTINCT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
		WHERE p.oid = ANY(ARRAY['pgmq.send(text,jsonb)', 'pgmq.send(text,jsonb,integer)', 'pgmq.send(text,jsonb,jsonb,integer)',
			'pgmq.send_batch(text,jsonb[])', 'pgmq.send_batch(text,jsonb[],integer)', 'pgmq.send_batch(text,jsonb[],jsonb[],integer)',
			'pgmq.delete(text,bigint)', 'pgmq.archive(text,bigint)']::regprocedure[]::oid[])`))
	require.Equal(t, []string{"plpgsql"}, langs)

	var id int64
	require.NoError(t, db.Get(&id, `SELECT pgmq.send('wrap_queue'::text, '{"n":1}'::jsonb)`))
	require.Equal(t, int64(1), id)
	require.NoError(t, db.Get(&id, `SELECT pgmq.send('wrap_queue'::text, '{"n":2}'::jsonb, 60::integer)`))
	require.Equal(t, int64(2), id)
	require.NoError(t, db.Get(&id, `SELECT pgmq.send('wrap_queue'::text, '{"n":3}'::jsonb, '{"h":true}'::jsonb, 0::integer)`))
	require.Equal(t, int64(3), id)
	var ids []int64
	require.NoError(t, db.Select(&ids, `SELECT pgmq.send_batch('wrap_queue'::text, ARRAY['{"n":4}','{"n":5}']::jsonb[])`))
	require.Equal(t, []int64{4, 5}, ids)
	require.NoError(t, db.Select(&ids, `SELECT pgmq.send_batch('wrap_queue'::text, ARRAY['{"n":6}']::jsonb[], 60::integer)`))
	require.Equal(t, []int64{6}, ids)
	require.NoError(t, db.Select(&ids, `SELECT pgmq.send_batch('wrap_queue'::text, ARRAY['{"n":7}']::jsonb[], ARRAY['{"h":7}']::jsonb[], 0::integer)`))
	require.Equal(t, []int64{7}, ids)
	var delayed []int64
	require.NoError(t, db.Select(&delayed, `SELECT msg_id FROM pgmq.q_wrap_queue WHERE vt > clock_timestamp() + interval '50 seconds' ORDER BY msg_id`))
	require.Equal(t, []int64{2, 6}, delayed, "integer delays applied")
	var headers []string
	require.NoError(t, db.Select(&headers, `SELECT headers::text FROM pgmq.q_wrap_queue WHERE headers IS NOT NULL ORDER BY msg_id`))
	require.Equal(t, []string{`{"h": true}`, `{"h": 7}`}, headers)

	var ok bool
	require.NoError(t, db.Get(&ok, `SELECT pgmq.delete('wrap_queue'::text, 1::bigint)`))
	require.True(t, ok)
	require.NoError(t, db.Get(&ok, `SELECT pgmq.delete('wrap_queue'::text, 1::bigint)`))
	require.False(t, ok, "already deleted")
	require.NoError(t, db.Get(&ok, `SELECT pgmq.archive('wrap_queue'::text, 3::bigint)`))
	require.True(t, ok)
	require.NoError(t, db.Get(&ok, `SELECT pgmq.archive('wrap_queue'::text, 3::bigint)`))
	require.False(t, ok, "already archived")
	var archived int
	require.NoError(t, db.Get(&archived, `SELECT count(*) FROM pgmq.a_wrap_queue WHERE msg_id = 3`))
	require.Equal(t, 1, archived)
}
