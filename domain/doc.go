// Package domain holds Tasker's pure types and rules: task templates, task
// requests, queue messages, step execution results and the task and step
// state machines. It performs no I/O and imports nothing of this module but
// itself, so every rule here can be tested as a pure function.
package domain
