package perf

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTicks = 100

// cpuMeter measures the CPU time spent by this process plus the PostgreSQL
// backends of one database between start and stop. On a shared machine the
// wall-clock steps/s follows everyone's load; CPU time per step does not, and
// 2 cores / (CPU per step) bounds what the worker and its database could do
// on two dedicated cores (when not waiting on WAL flushes). It works only
// when the server runs on this host and /proc is readable; otherwise ok is
// false. The backends' startup cost is included; the WAL writer and
// checkpointer, which serve every database, are not.
type cpuMeter struct {
	db     *sqlx.DB
	self0  time.Duration
	procs0 map[int]time.Duration
	ok     bool
	total  time.Duration
	self   time.Duration
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backendCPU maps each backend of db's database to its CPU time so far.
func backendCPU(db *sqlx.DB) (map[int]time.Duration, bool) {
	var pids []int
	if err := db.Select(&pids, `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`); err != nil {
		return nil, false
	}
	out := make(map[int]time.Duration, len(pids))
	for _, pid := range pids {
		cpu, ok := procCPU(pid)
		if !ok {
			return nil, false
		}
		out[pid] = cpu
	}
	return out, true
}

// procCPU reads utime+stime of a process (all its threads) from
// /proc/<pid>/stat; ok is false when the process is gone or /proc unreadable.
func procCPU(pid int) (time.Duration, bool) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from #3 (state) on
	if len(fields) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(fields[11], 10, 64) // #14 utime
	st, err2 := strconv.ParseInt(fields[12], 10, 64) // #15 stime
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * time.Second / clockTicks, true
}

func startCPUMeter(db *sqlx.DB) *cpuMeter {
	m := &cpuMeter{db: db, self0: selfCPU()}
	m.procs0, m.ok = backendCPU(db)
	return m
}

// stop must run while the measured backends are still connected.
func (m *cpuMeter) stop() {
	self := selfCPU() - m.self0
	procs, ok := backendCPU(m.db)
	m.ok = m.ok && ok
	var pg time.Duration
	for pid, t := range procs {
		pg += t - m.procs0[pid]
	}
	m.total = self + pg
	m.self = self
}

// report prints CPU per step and the implied 2-core bound.
func (m *cpuMeter) report(tb testing.TB, name string, n int) {
	if !m.ok || n == 0 {
		tb.Logf("%s: CPU per step not available (server not local or /proc unreadable)", name)
		return
	}
	per := m.total / time.Duration(n)
	line := "PERF " + name + ": CPU (this process + its database's backends) " + m.total.Round(time.Millisecond).String() +
		" for n=" + strconv.Itoa(n) + " = " + strconv.FormatFloat(float64(per.Microseconds())/1000, 'f', 3, 64) +
		" ms/step → 2-core bound " + strconv.Itoa(int(2*time.Second/per)) + " steps/s" +
		" (this process " + strconv.FormatFloat(float64((m.self/time.Duration(n)).Microseconds())/1000, 'f', 3, 64) +
		" ms/step, PostgreSQL " + strconv.FormatFloat(float64(((m.total-m.self)/time.Duration(n)).Microseconds())/1000, 'f', 3, 64) + " ms/step)"
	tb.Log(line)
	os.Stdout.WriteString(line + "\n")
}
