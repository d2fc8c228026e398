package cli

import (
	"fmt"
	"io"
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

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// barsObserver draws a live bar per job on a terminal: count, rate, ETA.
type barsObserver struct {
	w     io.Writer
	p     *mpb.Progress
	bars  map[string]*mpb.Bar
	rates []*jobRate
	index map[string]*jobRate
}

func (o *barsObserver) Started(plan *jobs.Plan, workers int) {
	o.p = mpb.New(mpb.WithOutput(o.w), mpb.WithWidth(32), mpb.WithRefreshRate(100*time.Millisecond))
	o.bars = map[string]*mpb.Bar{}
	o.index = map[string]*jobRate{}
	width := 0
	for _, j := range plan.Jobs {
		width = max(width, len(j.Name))
	}
	for _, j := range plan.Jobs {
		r := &jobRate{}
		o.bars[j.Name] = o.p.AddBar(int64(len(j.Tasks)),
			mpb.PrependDecorators(
				decor.Name(j.Name, decor.WC{W: width + 1, C: decor.DindentRight}),
				decor.CountersNoUnit("%d/%d", decor.WCSyncWidth),
			),
			mpb.AppendDecorators(decor.Any(r.decor, decor.WCSyncSpace)),
		)
		o.rates = append(o.rates, r)
		o.index[j.Name] = r
	}
}

// jobRate measures a job's rate from its first finished task, not from
// the start of the run: a job that waits for others (after:) would
// otherwise show a rate, and an ETA, diluted by the wait.
type jobRate struct {
	mu          sync.Mutex
	first, last time.Time
}

func (r *jobRate) tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if r.first.IsZero() {
		r.first = now
	}
	r.last = now
}

func (r *jobRate) decor(s decor.Statistics) string {
	r.mu.Lock()
	first, last := r.first, r.last
	r.mu.Unlock()
	switch {
	case s.Completed:
		return "done"
	case s.Current == 0:
		return "waiting"
	case s.Current == 1 || !last.After(first):
		return "running"
	}
	rate := float64(s.Current-1) / last.Sub(first).Seconds()
	eta := time.Duration(float64(s.Total-s.Current) / rate * float64(time.Second)).Round(time.Second)
	return fmt.Sprintf("%.1f tasks/s, ETA %v", rate, eta)
}

func (o *barsObserver) TaskFinished(r *jobs.Result) {
	if rate := o.index[r.Job]; rate != nil {
		rate.tick()
	}
	if b := o.bars[r.Job]; b != nil {
		b.Increment()
	}
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
	o.p.Wait()
}

// plainObserver prints a progress line at most once a second, and one when
// a job is finished: for logs and pipes.
type plainObserver struct {
	w     io.Writer
	total int
	done  int
	fail  int
	left  map[string]int
	start time.Time
	last  time.Time
}

func (o *plainObserver) Started(plan *jobs.Plan, workers int) {
	o.total, o.start, o.left = plan.Tasks, time.Now(), map[string]int{}
	for _, j := range plan.Jobs {
		o.left[j.Name] = len(j.Tasks)
	}
	fmt.Fprintf(o.w, "ppool: %s in %s on %s\n", plural(plan.Tasks, "task"), plural(len(plan.Jobs), "job"), plural(workers, "worker"))
}

func (o *plainObserver) TaskFinished(r *jobs.Result) {
	o.done++
	if r.Status == jobs.StatusFailed {
		o.fail++
		fmt.Fprintf(o.w, "ppool: %s/%s failed: %s\n", r.Job, r.Task, firstLine(r.Error))
	}
	o.left[r.Job]--
	now := time.Now()
	if o.left[r.Job] == 0 {
		fmt.Fprintf(o.w, "ppool: job %s done\n", r.Job)
	}
	if now.Sub(o.last) >= time.Second || o.done == o.total {
		o.last = now
		el := now.Sub(o.start)
		rate := float64(o.done) / el.Seconds()
		eta := ""
		if rate > 0 && o.done < o.total {
			eta = fmt.Sprintf(", ETA %v", time.Duration(float64(o.total-o.done)/rate*float64(time.Second)).Round(time.Second))
		}
		fmt.Fprintf(o.w, "ppool: %d/%d tasks (%d failed), %.1f tasks/s%s\n", o.done, o.total, o.fail, rate, eta)
	}
}

func (o *plainObserver) Stopping(reason string) { fmt.Fprintf(o.w, "ppool: %s\n", reason) }

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
