package dist

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultListen is where `ppool server` listens by default: loopback only,
// so that a first run exposes nothing to the network.
const DefaultListen = "127.0.0.1:4222"

// ServerConfig configures an embedded NATS server with JetStream. The zero
// value listens on DefaultListen with its store under the user's cache
// folder and no authentication.
type ServerConfig struct {
	// Listen is HOST:PORT; port 0 picks a free port.
	Listen string
	// StoreDir holds JetStream's streams, so that a restarted server on the
	// same folder has them back. Default: DefaultStoreDir().
	StoreDir string
	// User and Password, or Token, are what clients must present.
	User, Password string
	Token          string
	// TLS, if set, makes the server require TLS.
	TLS *tls.Config
	// ReadyTimeout bounds the start. Default 10 s.
	ReadyTimeout time.Duration
}

// DefaultStoreDir is the server's store when none is given: a folder in the
// user's cache folder.
func DefaultStoreDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no --store given and no cache folder: %w", err)
	}
	return filepath.Join(dir, "ppool", "nats"), nil
}

// Server is an embedded NATS server.
type Server struct {
	ns   *server.Server
	opts *server.Options
}

// StartServer starts an embedded server and returns once it accepts
// connections.
func StartServer(cfg ServerConfig) (*Server, error) {
	listen := cfg.Listen
	if listen == "" {
		listen = DefaultListen
	}
	host, portText, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("--listen %q: port %q is not a port number", listen, portText)
	}
	if port == 0 {
		port = server.RANDOM_PORT // nats-server reads 0 as its default, 4222
	}
	store := cfg.StoreDir
	if store == "" {
		if store, err = DefaultStoreDir(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(store, 0o700); err != nil {
		return nil, fmt.Errorf("server store: %w", err)
	}
	opts := &server.Options{
		Host:                   host,
		Port:                   port,
		JetStream:              true,
		StoreDir:               store,
		NoSigs:                 true, // the command handles signals itself
		NoLog:                  true,
		DisableJetStreamBanner: true,
		Username:               cfg.User,
		Password:               cfg.Password,
		Authorization:          cfg.Token,
		// Monitoring, clustering and leafnodes stay off; their ports are 0.
	}
	if cfg.TLS != nil {
		opts.TLS = true
		opts.TLSConfig = cfg.TLS
		opts.TLSTimeout = 2
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	ns.Start()
	timeout := cfg.ReadyTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if !ns.ReadyForConnections(timeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("nats server on %s: not ready within %v (is the port in use?)", listen, timeout)
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, errors.New("nats server started without JetStream (store " + store + ")")
	}
	return &Server{ns: ns, opts: opts}, nil
}

// URL is the address to give agents and runs: nats://HOST:PORT (tls://
// with TLS), the host as listened on, or this machine's host name when the
// server listens on every interface.
func (s *Server) URL() string {
	addr := s.ns.Addr().(*net.TCPAddr)
	scheme := "nats"
	if s.opts.TLSConfig != nil {
		scheme = "tls"
	}
	host := s.opts.Host
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		// Listening everywhere: other machines need a name for this one.
		if host, _ = os.Hostname(); host == "" {
			host = "127.0.0.1"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

// Shutdown stops the server and waits until it has stopped, its store
// flushed.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
