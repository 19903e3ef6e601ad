package eventbus

import (
	"context"
	"testing"
	"time"

	"github.com/tasker-systems/tasker-go/domain"
)

// BenchmarkBusThroughput measures execution events moved from one publisher
// to one subscriber through the default-sized buffer (goal ≥ 1M events/s).
func BenchmarkBusThroughput(b *testing.B) {
	bus := New(Config{})
	ctx := context.Background()
	ev := domain.StepExecutionEvent{}
	done := make(chan struct{})
	go func() {
		for i := 0; i < b.N; i++ {
			<-bus.Executions()
		}
		close(done)
	}()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := bus.PublishExecution(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkBusRoundTrip measures an execution event and its completion
// event travelling the full loop, as a step does.
func BenchmarkBusRoundTrip(b *testing.B) {
	bus := New(Config{})
	ctx := context.Background()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case ev := <-bus.Executions():
				_ = bus.PublishCompletion(ctx, domain.StepCompletionEvent{EventID: ev.EventID})
			case <-stop:
				return
			}
		}
	}()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := bus.PublishExecution(ctx, domain.StepExecutionEvent{}); err != nil {
			b.Fatal(err)
		}
		<-bus.Completions()
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "roundtrips/s")
}
