package command

import (
	"context"
	"testing"
	"time"

	"github.com/tasker-systems/tasker-go/ports"
)

// BenchmarkCommandRoundTrip measures one command round trip: submit,
// handle, acknowledge (a Shutdown closing its Done; goal < 1 ms per command).
func BenchmarkCommandRoundTrip(b *testing.B) {
	p, err := New(Config{}, &fakeExecutor{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		done := make(chan struct{})
		if err := p.Submit(context.Background(), Shutdown{Done: done}); err != nil {
			b.Fatal(err)
		}
		<-done
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "µs/command")
}

// BenchmarkExecuteStepThroughput measures ExecuteStep commands handled per
// second with an executor that does nothing (the processor's own overhead).
func BenchmarkExecuteStepThroughput(b *testing.B) {
	ex := &fakeExecutor{}
	p, err := New(Config{}, ex, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	released := make(chan struct{}, 1024)
	b.ResetTimer()
	start := time.Now()
	go func() {
		for i := 0; i < b.N; i++ {
			_ = p.SubmitStep(context.Background(), "q", ports.QueueMessage{}, func() { released <- struct{}{} })
		}
	}()
	for i := 0; i < b.N; i++ {
		<-released
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commands/s")
}
