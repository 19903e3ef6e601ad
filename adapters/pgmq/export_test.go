package pgmq

// PooledReadSQL exposes the pooled read statement to the tests.
var PooledReadSQL = pooledReadSQL
