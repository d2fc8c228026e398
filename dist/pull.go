package dist

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// puller is one worker slot's pull of tasks: a subscription of its own,
// made once and kept, that each pull request names as its reply. The
// library's Next makes a subscription, a goroutine and a timer for every
// task and drops them after; a tiny task's round trip is mostly such
// costs, so the slot asks the consumer's API itself, one task at a time.
type puller struct {
	nc      *nats.Conn
	sub     *nats.Subscription
	subject string // the consumer's next-message API
	request []byte // one task, the pull expiring after wait
	wait    time.Duration
}

func newPuller(nc *nats.Conn, wait time.Duration) (*puller, error) {
	sub, err := nc.SubscribeSync(nc.NewInbox())
	if err != nil {
		return nil, fmt.Errorf("subscribing for tasks: %w", err)
	}
	return &puller{
		nc: nc, sub: sub, wait: wait,
		subject: "$JS.API.CONSUMER.MSG.NEXT." + TaskStream + "." + TaskConsumer,
		request: []byte(`{"batch":1,"expires":` + strconv.FormatInt(wait.Nanoseconds(), 10) + `}`),
	}, nil
}

// errPullLost is a pull that neither delivered nor expired in time: the
// server lost it (it restarted, the connection broke).
var errPullLost = errors.New("the pull got no answer")

// next asks for one task and waits for it: nil and no error when the
// pull expired with no task for it.
//
// The server expires the pull after wait; it is given half as long again
// to say so before the pull counts as lost, so that a slot never has two
// pulls out (the second task would wait unstarted).
func (p *puller) next() (*nats.Msg, error) {
	// An answer of a pull counted as lost may come late: it is this
	// pull's, and no new one is asked for until it is read.
	if n, _, _ := p.sub.Pending(); n == 0 {
		if err := p.nc.PublishRequest(p.subject, p.sub.Subject, p.request); err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(p.wait + p.wait/2 + 100*time.Millisecond)
	for {
		msg, err := p.sub.NextMsg(time.Until(deadline))
		if errors.Is(err, nats.ErrTimeout) {
			return nil, errPullLost
		}
		if err != nil {
			return nil, err
		}
		if len(msg.Data) > 0 || msg.Header.Get("Status") == "" {
			return msg, nil
		}
		switch code := msg.Header.Get("Status"); code {
		case "100": // an idle heartbeat
		case "404", "408":
			return nil, nil // no task: the pull expired
		default:
			// 409: the consumer is gone, or the server refused the pull
			// (too many waiting, a leader change).
			return nil, fmt.Errorf("pull refused: %s %s", code, msg.Header.Get("Description"))
		}
	}
}

// close drops the subscription; the server delivers nothing to a pull
// whose reply subject has no subscriber.
func (p *puller) close() { _ = p.sub.Unsubscribe() } // a closed connection dropped it already
