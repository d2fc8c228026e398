package dist

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// DefaultURL is the server a command connects to when neither --nats nor
// NATS_URL names one: the default of `ppool server`.
const DefaultURL = "nats://127.0.0.1:4222"

// ConnOptions says how to reach a NATS server, with the nats CLI's flags
// and environment variables: --nats (NATS_URL), --creds (NATS_CREDS),
// --nkey (NATS_NKEY), --tlscert (NATS_CERT), --tlskey (NATS_KEY) and
// --tlsca (NATS_CA). A user and password, or a token, go in the URL
// (nats://user:pass@host:4222, nats://token@host:4222). The zero value
// reaches DefaultURL with no credentials.
type ConnOptions struct {
	URL     string
	Creds   string // a .creds file (user JWT and NKey seed)
	NKey    string // a file holding an NKey seed
	TLSCert string // client certificate, with TLSKey
	TLSKey  string
	TLSCA   string // CA certificates to verify the server with
	// Name is the connection's name, shown in the server's monitoring.
	Name string
	// Timeout bounds the first connection. Default 5 s.
	Timeout time.Duration
	// Reconnect keeps trying for ever after a lost connection (an agent
	// outlives a server restart); without it the library's default holds.
	Reconnect bool
}

// FromEnv fills the fields still empty from the nats CLI's environment
// variables, then URL from DefaultURL.
func (o *ConnOptions) FromEnv() {
	for _, f := range []struct {
		field *string
		env   string
	}{{&o.URL, "NATS_URL"}, {&o.Creds, "NATS_CREDS"}, {&o.NKey, "NATS_NKEY"},
		{&o.TLSCert, "NATS_CERT"}, {&o.TLSKey, "NATS_KEY"}, {&o.TLSCA, "NATS_CA"}} {
		if *f.field == "" {
			*f.field = os.Getenv(f.env)
		}
	}
	if o.URL == "" {
		o.URL = DefaultURL
	}
}

// ErrAuthRefused is matched (errors.Is) by a *ConnectError whose server
// refused the credentials given, or the lack of them.
var ErrAuthRefused = errors.New("the server refused the credentials")

// ConnectError is a failed connection to a NATS server.
type ConnectError struct {
	URL string // without its password or token
	Err error
}

func (e *ConnectError) Error() string {
	hint := ""
	var unknownAuthority x509.UnknownAuthorityError
	switch {
	case isAuthError(e.Err):
		hint = ": the server refused the credentials (check --creds, --nkey, or the user and password or token in the URL)"
	case errors.As(e.Err, &unknownAuthority):
		hint = ": the server's TLS certificate is not signed by a known authority (give its CA with --tlsca)"
	case errors.Is(e.Err, nats.ErrSecureConnRequired):
		hint = ": the server requires TLS (use a tls:// URL, or --tlsca)"
	case errors.Is(e.Err, nats.ErrNoServers):
		hint = ": no server answered there (is `ppool server` or a NATS server running?)"
	}
	return fmt.Sprintf("connecting to %s%s: %v", e.URL, hint, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrAuthRefused) hold for refused credentials.
func (e *ConnectError) Is(target error) bool {
	return target == ErrAuthRefused && isAuthError(e.Err)
}

func isAuthError(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired)
}

// Connect connects to the server o names; o's empty fields are taken from
// the environment first (FromEnv).
func Connect(o ConnOptions) (*nats.Conn, error) {
	o.FromEnv()
	opts := []nats.Option{nats.Name(o.Name), nats.Timeout(o.Timeout)}
	if o.Timeout <= 0 {
		opts[1] = nats.Timeout(5 * time.Second)
	}
	if o.Reconnect {
		opts = append(opts, nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	}
	if o.Creds != "" {
		opts = append(opts, nats.UserCredentials(o.Creds))
	}
	if o.NKey != "" {
		opt, err := nats.NkeyOptionFromSeed(o.NKey)
		if err != nil {
			return nil, fmt.Errorf("--nkey %s: %w", o.NKey, err)
		}
		opts = append(opts, opt)
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, errors.New("--tlscert and --tlskey go together")
	}
	if o.TLSCert != "" {
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, &ConnectError{URL: redact(o.URL), Err: err}
	}
	return nc, nil
}

// redact drops the password or token from each URL of a comma-separated
// list, for error messages.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, s := range parts {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || u.User == nil {
			continue
		}
		if _, hasPass := u.User.Password(); hasPass {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		} else {
			u.User = url.User("xxxxx") // a token
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
