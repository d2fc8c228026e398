package cli

import (
	"io"
	"testing"
	"time"

	"github.com/ppool/ppool/jobs"
)

func TestEstimatorWithholdsETA(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	cases := []struct {
		name   string
		finish []float64 // when each task finished, seconds in
		now    float64
		total  int
		ok     bool
	}{
		{"too early", []float64{0.5, 1, 1.5, 2}, 2, 40, false},
		{"too few done", []float64{3.5}, 4, 100, false},
		{"steady", []float64{1, 2, 3, 4, 5, 6}, 6, 40, true},
		// Fast at first, then stalled: the recent rate is far below the
		// rate so far, and an ETA from it would be wrong.
		{"stalled", []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, 6, 40, false},
		{"finished", []float64{1, 2, 3, 4}, 4, 4, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := estimator{start: t0}
			for i, s := range c.finish {
				e.add(at(s), i+1)
			}
			rate, left, ok := e.estimate(at(c.now), len(c.finish), c.total)
			if ok != c.ok {
				t.Fatalf("ETA shown %v (rate %.2f, left %v), want %v", ok, rate, left, c.ok)
			}
			if ok && (left < 30*time.Second || left > 40*time.Second) {
				t.Errorf("left %v, want about 34s", left)
			}
		})
	}
}

func TestEstimatorThinsSamples(t *testing.T) {
	e := estimator{start: time.Unix(0, 0)}
	for i := range 10 * maxSamples {
		e.add(time.Unix(int64(i+1), 0), i+1)
	}
	if len(e.samples) > maxSamples {
		t.Fatalf("%d samples kept", len(e.samples))
	}
	if _, _, ok := e.estimate(time.Unix(int64(10*maxSamples), 0), 10*maxSamples, 20*maxSamples); !ok {
		t.Error("no ETA at a steady rate")
	}
}

func TestBarsLabelJobs(t *testing.T) {
	first := &jobs.PlannedJob{Job: &jobs.Job{Name: "first"}, Tasks: []*jobs.Task{{}, {}}}
	then := &jobs.PlannedJob{Job: &jobs.Job{Name: "then"}, Tasks: []*jobs.Task{{}}, After: []*jobs.PlannedJob{first}}
	o := &barsObserver{w: io.Discard}
	o.Started(&jobs.Plan{Jobs: []*jobs.PlannedJob{first, then}, Tasks: 3}, 2)
	defer o.finish()
	check := func(job *jobProgress, want string) {
		t.Helper()
		if got := o.jobText(job); got != want {
			t.Errorf("job %s shows %q, want %q", job.name, got, want)
		}
	}
	check(o.jobs["first"], "running")
	check(o.jobs["then"], "waiting")
	o.TaskFinished(&jobs.Result{Job: "first", Status: jobs.StatusOK})
	o.TaskFinished(&jobs.Result{Job: "first", Status: jobs.StatusOK})
	check(o.jobs["first"], "done")
	check(o.jobs["then"], "running")
	o.TaskFinished(&jobs.Result{Job: "then", Status: jobs.StatusOK})
	check(o.jobs["then"], "done")
}
