package postgres

// TaskStepsSQLForTest is taskStepsSQL, for plan tests.
func TaskStepsSQLForTest() string { return taskStepsSQL }

// SeqScansInPlan is seqScansInPlan, for plan tests.
var SeqScansInPlan = seqScansInPlan
