package postgres

// TaskStepsSQLForTest is taskStepsSQL, for plan tests.
func TaskStepsSQLForTest(lockReady bool) string { return taskStepsSQL(lockReady) }

// SeqScansInPlan is seqScansInPlan, for plan tests.
var SeqScansInPlan = seqScansInPlan
