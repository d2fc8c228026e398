package cli

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/sys/unix"

	"github.com/ppool/ppool/jobs"
)

// terminalWidth is the width of the terminal w is, in columns: 0 if w is
// no terminal, or one that does not know its size (script(1), some CI
// runners report 0×0), where bars cannot be drawn.
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0
	}
	return int(ws.Col)
}

// estimator turns a count of finished tasks into a rate and an ETA, and
// withholds the ETA until it means something: a few seconds and a few
// per cent of the tasks in, and while the recent rate agrees with the
// rate so far (the first tasks of a run, or a job whose tasks vary, say
// little about the rest).
type estimator struct {
	start   time.Time
	samples []sample // (when, done) at each finish, thinned as they grow
}

type sample struct {
	t    time.Time
	done int
}

const (
	etaMinElapsed = 3 * time.Second
	etaMinShare   = 0.05 // of the tasks done
	etaMaxDrift   = 0.5  // recent rate within ±50% of the rate so far
	maxSamples    = 256
)

func (e *estimator) add(now time.Time, done int) {
	if len(e.samples) == maxSamples {
		// Keep every other sample: the window looked at is a share of
		// the elapsed time, so older samples may be sparser.
		for i := range maxSamples / 2 {
			e.samples[i] = e.samples[2*i+1]
		}
		e.samples = e.samples[:maxSamples/2]
	}
	e.samples = append(e.samples, sample{now, done})
}

// estimate returns the rate so far in tasks/s, and the time left, with
// ok false when the time left is not yet worth showing.
func (e *estimator) estimate(now time.Time, done, total int) (rate float64, left time.Duration, ok bool) {
	elapsed := now.Sub(e.start)
	if elapsed <= 0 || done == 0 {
		return 0, 0, false
	}
	rate = float64(done) / elapsed.Seconds()
	if done >= total || elapsed < etaMinElapsed || float64(done) < etaMinShare*float64(total) {
		return rate, 0, false
	}
	// The recent rate: over the last third of the time so far, from the
	// last sample before that window.
	from := sample{e.start, 0}
	cut := now.Add(-elapsed / 3)
	for _, s := range e.samples {
		if s.t.After(cut) {
			break
		}
		from = s
	}
	recent := float64(done-from.done) / now.Sub(from.t).Seconds()
	if recent < rate*(1-etaMaxDrift) || recent > rate*(1+etaMaxDrift) {
		return rate, 0, false
	}
	left = time.Duration(float64(total-done) / rate * float64(time.Second))
	return rate, left, true
}

// progressText is "12/40 tasks (1 failed) in 4.2s, 2.9 tasks/s, ETA 10s",
// the ETA only when it means something.
func progressText(e *estimator, now time.Time, done, total, failed int) string {
	rate, left, ok := e.estimate(now, done, total)
	s := fmt.Sprintf("%d/%d tasks (%d failed) in %v, %.1f tasks/s", done, total, failed, roundDuration(now.Sub(e.start)), rate)
	if ok {
		s += ", ETA " + roundDuration(left).String()
	}
	return s
}

func roundDuration(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	if d < time.Minute {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// jobState is where a job is in a run, for its progress bar.
type jobState int

const (
	jobWaiting jobState = iota // for the jobs it runs after
	jobRunning
	jobDone
)

func (s jobState) String() string {
	return [...]string{"waiting", "running", "done"}[s]
}

// barsObserver draws a live bar per job on a terminal, and one for the
// whole run: count, elapsed time, rate, ETA.
type barsObserver struct {
	w    io.Writer
	p    *mpb.Progress
	bars map[string]*mpb.Bar
	all  *mpb.Bar

	mu    sync.Mutex // guards what follows: the bars' decorators read it
	jobs  map[string]*jobProgress
	order []*jobProgress
	total progressCount
}

// jobProgress is one job's count and what it waits for.
type jobProgress struct {
	name  string
	after []string
	state jobState
	progressCount
}

type progressCount struct {
	done, total, failed int
	est                 estimator
}

func (o *barsObserver) Started(plan *jobs.Plan, workers int) {
	now := time.Now()
	o.p = mpb.New(mpb.WithOutput(o.w), mpb.WithWidth(32), mpb.WithRefreshRate(100*time.Millisecond))
	o.bars = map[string]*mpb.Bar{}
	o.jobs = map[string]*jobProgress{}
	o.total = progressCount{total: plan.Tasks, est: estimator{start: now}}
	width := len("total")
	for _, j := range plan.Jobs {
		width = max(width, len(j.Name))
	}
	for _, j := range plan.Jobs {
		jp := &jobProgress{name: j.Name, progressCount: progressCount{total: len(j.Tasks), est: estimator{start: now}}}
		for _, a := range j.After {
			jp.after = append(jp.after, a.Name)
		}
		if len(jp.after) > 0 {
			jp.state = jobWaiting
		} else {
			jp.state = jobRunning
		}
		o.jobs[j.Name] = jp
		o.order = append(o.order, jp)
		o.bars[j.Name] = o.p.AddBar(int64(len(j.Tasks)),
			mpb.PrependDecorators(
				decor.Name(j.Name, decor.WC{W: width + 1, C: decor.DindentRight}),
				decor.CountersNoUnit("%d/%d", decor.WCSyncWidth),
			),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return o.jobText(jp) }, decor.WCSyncSpace)),
		)
	}
	o.all = o.p.AddBar(int64(plan.Tasks),
		mpb.PrependDecorators(
			decor.Name("total", decor.WC{W: width + 1, C: decor.DindentRight}),
			decor.CountersNoUnit("%d/%d", decor.WCSyncWidth),
		),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return o.totalText() }, decor.WCSyncSpace)),
	)
}

func (o *barsObserver) jobText(jp *jobProgress) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if jp.state != jobRunning {
		return jp.state.String()
	}
	rate, left, ok := jp.est.estimate(time.Now(), jp.done, jp.total)
	switch {
	case jp.done == 0:
		return "running"
	case ok:
		return fmt.Sprintf("%.1f tasks/s, ETA %v", rate, roundDuration(left))
	}
	return fmt.Sprintf("%.1f tasks/s", rate)
}

func (o *barsObserver) totalText() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	if n := len(o.total.est.samples); n > 0 && o.total.done >= o.total.total {
		now = o.total.est.samples[n-1].t // the clock stops with the last task
	}
	rate, left, ok := o.total.est.estimate(now, o.total.done, o.total.total)
	s := fmt.Sprintf("%v, %.1f tasks/s", roundDuration(now.Sub(o.total.est.start)), rate)
	if ok {
		s += fmt.Sprintf(", ETA %v", roundDuration(left))
	}
	return s
}

func (o *barsObserver) TaskFinished(r *jobs.Result) {
	now := time.Now()
	o.mu.Lock()
	if jp := o.jobs[r.Job]; jp != nil {
		jp.count(now, r)
		if jp.done == jp.total {
			jp.state = jobDone
			// The jobs that waited for this one may be running now.
			for _, w := range o.order {
				if w.state == jobWaiting && o.afterDone(w) {
					w.state, w.est.start = jobRunning, now
				}
			}
		}
	}
	o.total.count(now, r)
	o.mu.Unlock()
	if b := o.bars[r.Job]; b != nil {
		b.Increment()
	}
	o.all.Increment()
}

func (c *progressCount) count(now time.Time, r *jobs.Result) {
	c.done++
	if r.Status == jobs.StatusFailed {
		c.failed++
	}
	c.est.add(now, c.done)
}

func (o *barsObserver) afterDone(jp *jobProgress) bool {
	for _, a := range jp.after {
		if dep := o.jobs[a]; dep != nil && dep.state != jobDone {
			return false
		}
	}
	return true
}

func (o *barsObserver) Stopping(reason string) {
	fmt.Fprintf(o.p, "ppool: %s\n", reason)
}

func (o *barsObserver) finish() {
	for _, b := range o.bars {
		if !b.Completed() {
			b.Abort(false)
		}
	}
	if !o.all.Completed() {
		o.all.Abort(false)
	}
	o.p.Wait()
}

// plainObserver prints a progress line at most once a second, and one when
// a job is finished: for logs and pipes.
type plainObserver struct {
	w io.Writer
	lineTally
}

// lineTally is what the observers that report in lines (plain and JSON)
// keep: the counts, the tasks left per job, and when they last reported.
type lineTally struct {
	c    progressCount
	left map[string]int
	last time.Time
}

func (l *lineTally) start(plan *jobs.Plan) {
	l.c, l.left = progressCount{total: plan.Tasks, est: estimator{start: time.Now()}}, map[string]int{}
	for _, j := range plan.Jobs {
		l.left[j.Name] = len(j.Tasks)
	}
}

// finished counts r. jobDone: r was its job's last task; report: a
// progress line is due (a second since the last one, or the run's last
// task).
func (l *lineTally) finished(now time.Time, r *jobs.Result) (jobDone, report bool) {
	l.c.count(now, r)
	l.left[r.Job]--
	if now.Sub(l.last) >= time.Second || l.c.done == l.c.total {
		l.last, report = now, true
	}
	return l.left[r.Job] == 0, report
}

func (o *plainObserver) Started(plan *jobs.Plan, workers int) {
	o.start(plan)
	fmt.Fprintf(o.w, "ppool: %s in %s on %s\n", plural(plan.Tasks, "task"), plural(len(plan.Jobs), "job"), plural(workers, "worker"))
}

func (o *plainObserver) TaskFinished(r *jobs.Result) {
	now := time.Now()
	jobDone, report := o.finished(now, r)
	if r.Status == jobs.StatusFailed {
		fmt.Fprintf(o.w, "ppool: %s/%s failed: %s\n", r.Job, r.Task, firstLine(r.Error))
	}
	if jobDone {
		fmt.Fprintf(o.w, "ppool: job %s done\n", r.Job)
	}
	if report {
		fmt.Fprintf(o.w, "ppool: %s\n", progressText(&o.c.est, now, o.c.done, o.c.total, o.c.failed))
	}
}

func (o *plainObserver) Stopping(reason string) { fmt.Fprintf(o.w, "ppool: %s\n", reason) }

// jsonObserver reports progress as log events, for --log-format json:
// stderr then holds JSON lines only. Failures are not repeated here: the
// run logs each one.
type jsonObserver struct {
	log *slog.Logger
	lineTally
}

func (o *jsonObserver) Started(plan *jobs.Plan, workers int) {
	o.start(plan)
	o.log.Info("run started", "tasks", plan.Tasks, "jobs", len(plan.Jobs), "workers", workers)
}

func (o *jsonObserver) TaskFinished(r *jobs.Result) {
	now := time.Now()
	jobDone, report := o.finished(now, r)
	if jobDone {
		o.log.Info("job done", "job", r.Job)
	}
	if report {
		rate, left, ok := o.c.est.estimate(now, o.c.done, o.c.total)
		attrs := []any{"done", o.c.done, "total", o.c.total, "failed", o.c.failed,
			"elapsed_s", roundDuration(now.Sub(o.c.est.start)).Seconds(), "tasks_per_s", math.Round(rate*10) / 10}
		if ok {
			attrs = append(attrs, "eta_s", roundDuration(left).Seconds())
		}
		o.log.Info("progress", attrs...)
	}
}

func (o *jsonObserver) Stopping(reason string) { o.log.Warn("stopping", "reason", reason) }

// logSummary is printSummary as one JSON event.
func logSummary(log *slog.Logger, s *jobs.Summary) {
	byJob := map[string]any{}
	for _, j := range s.Jobs {
		byJob[j.Name] = map[string]int{"ok": j.OK, "failed": j.Failed, "skipped": j.Skipped, "cancelled": j.Cancelled}
	}
	log.Info("run finished", "ok", s.OK, "failed", s.Failed, "skipped", s.Skipped, "cancelled", s.Cancelled,
		"wall_s", s.Wall.Round(time.Millisecond).Seconds(), "workers", s.Workers,
		"cpu_utilisation", math.Round(100*s.Utilisation())/100, "jobs", byJob)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// printSummary writes the table shown at the end of a run.
func printSummary(w io.Writer, s *jobs.Summary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "job\tok\tfailed\tskipped\tcancelled\t")
	for _, j := range s.Jobs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t\n", j.Name, j.OK, j.Failed, j.Skipped, j.Cancelled)
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t\n", s.OK, s.Failed, s.Skipped, s.Cancelled)
	tw.Flush()
	fmt.Fprintf(w, "wall time %v on %s, CPU utilisation %.0f%%\n", s.Wall.Round(time.Millisecond), plural(s.Workers, "worker"), 100*s.Utilisation())
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
