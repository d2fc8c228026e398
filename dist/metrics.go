package dist

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are an agent's Prometheus metrics, in a registry of its own (not
// the global one, so that two agents in one process, as in tests, do not
// collide).
type metrics struct {
	reg          *prometheus.Registry
	done, failed prometheus.Counter
	running      prometheus.Gauge
	busy, free   prometheus.Gauge
	queueWait    prometheus.Histogram
	bytesIn      prometheus.Counter
	bytesOut     prometheus.Counter
}

func newMetrics(workers int) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		done: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ppool_agent_tasks_done_total", Help: "Tasks that succeeded on this agent."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ppool_agent_tasks_failed_total", Help: "Tasks that failed on this agent (their result says why)."}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ppool_agent_tasks_running", Help: "Tasks running now."}),
		busy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ppool_agent_workers_busy", Help: "Workers running a task."}),
		free: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ppool_agent_workers_free", Help: "Workers waiting for a task."}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ppool_agent_queue_wait_seconds",
			Help:    "Time from a task's publication to its start on this agent.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 12), // 100 µs to about 7 min
		}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ppool_agent_bytes_received_total", Help: "Bytes of task messages received."}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ppool_agent_bytes_sent_total", Help: "Bytes of result messages sent, inline outputs included."}),
	}
	m.reg.MustRegister(m.done, m.failed, m.running, m.busy, m.free, m.queueWait, m.bytesIn, m.bytesOut)
	m.free.Set(float64(workers))
	return m
}

// started and ended move a worker between free and busy.
func (m *metrics) started(wait time.Duration) {
	m.running.Inc()
	m.busy.Inc()
	m.free.Dec()
	m.queueWait.Observe(wait.Seconds())
}

func (m *metrics) ended() {
	m.running.Dec()
	m.busy.Dec()
	m.free.Inc()
}

// metricsServer serves /metrics until shut down.
type metricsServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

func serveMetrics(addr string, reg *prometheus.Registry) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s := &metricsServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		ln:   ln,
		done: make(chan error, 1), // Serve's end, read once by shutdown
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

func (s *metricsServer) addr() string { return s.ln.Addr().String() }

func (s *metricsServer) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serveErr := <-s.done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return err
}
