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
	nc    *nats.Conn
	sub   *nats.Subscription // on inbox.*
	inbox string
	pulls uint64 // pulls sent: the last one's reply subject is inbox.pulls
	// unsure: a pull was lost, and may answer yet (the server slow, not
	// restarted); cleared by an answer of a later pull.
	unsure  bool
	subject string // the consumer's next-message API
	request []byte // one task, the pull expiring after wait
	ackNext []byte // the same, after an ack (AckNext)
	wait    time.Duration
}

func newPuller(nc *nats.Conn, wait time.Duration) (*puller, error) {
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox + ".*")
	if err != nil {
		return nil, fmt.Errorf("subscribing for tasks: %w", err)
	}
	request := `{"batch":1,"expires":` + strconv.FormatInt(wait.Nanoseconds(), 10) + `}`
	return &puller{
		nc: nc, sub: sub, inbox: inbox, wait: wait,
		subject: "$JS.API.CONSUMER.MSG.NEXT." + TaskStream + "." + TaskConsumer,
		request: []byte(request),
		ackNext: []byte("+NXT " + request),
	}, nil
}

// errPullLost is a pull that neither delivered nor expired in time: the
// server lost it (it restarted, the connection broke).
var errPullLost = errors.New("the pull got no answer")

// next asks for one task and waits for it: nil and no error when the
// pull expired with no task for it.
//
// With done set (a task whose result is stored), the pull acks it first:
// one message, "+NXT" and the pull on the task's ack subject, which the
// server takes as the ack and then the pull, in that order. An answer to
// that pull (a task, its expiry, a refusal) so says that the server took
// the ack, as a DoubleAck's reply would, and acked reports it: the slot
// saves the ack's round trip, and the consumer never counts the slot's
// next task before its last one is acked. Without an answer (the pull
// lost) the ack may be lost too, and the caller acks again, waiting. So
// that an answer is known for this pull's, no ack goes with a pull while
// an earlier one may still answer (errAckFirst).
//
// The server expires the pull after wait; it is given half as long again
// to say so before the pull counts as lost, so that a slot never has two
// pulls out (the second task would wait unstarted).
//
// meanwhile, if set, runs once the pull is sent, while its answer comes.
func (p *puller) next(done *nats.Msg, meanwhile func()) (msg *nats.Msg, acked bool, err error) {
	// An answer of a pull counted as lost may come late: it is this
	// pull's, and no new one is asked for until it is read.
	waiting := p.waiting()
	if done != nil && (waiting || p.unsure) {
		return nil, false, errAckFirst // meanwhile not run: the caller runs it
	}
	if !waiting {
		subject, request := p.subject, p.request
		if done != nil {
			subject, request = done.Reply, p.ackNext
		}
		p.pulls++
		if err := p.nc.PublishRequest(subject, p.inbox+"."+strconv.FormatUint(p.pulls, 10), request); err != nil {
			return nil, false, err
		}
	}
	if meanwhile != nil {
		meanwhile()
	}
	this := p.inbox + "." + strconv.FormatUint(p.pulls, 10)
	deadline := time.Now().Add(p.wait + p.wait/2 + 100*time.Millisecond)
	for {
		msg, err := p.sub.NextMsg(time.Until(deadline))
		if err != nil {
			p.unsure = true
			if errors.Is(err, nats.ErrTimeout) {
				err = errPullLost
			}
			return nil, false, err
		}
		if len(msg.Data) > 0 || msg.Header.Get("Status") == "" {
			// A task: with done, only this pull was out.
			return msg, done != nil, nil
		}
		if msg.Subject != this {
			continue // a lost pull's late expiry: this one is still out
		}
		// The server answers pulls in order: every earlier one is done.
		p.unsure = false
		acked = done != nil
		switch code := msg.Header.Get("Status"); code {
		case "100": // an idle heartbeat
		case "404", "408":
			return nil, acked, nil // no task: the pull expired
		default:
			// 409: the consumer is gone, or the server refused the pull
			// (too many waiting, a leader change).
			return nil, acked, fmt.Errorf("pull refused: %s %s", code, msg.Header.Get("Description"))
		}
	}
}

// errAckFirst is next refusing to ack with a pull while an earlier pull
// may still answer: the caller acks on its own first.
var errAckFirst = errors.New("an earlier pull may still answer")

// waiting reports whether an answer of an earlier pull waits to be read.
func (p *puller) waiting() bool {
	n, _, _ := p.sub.Pending()
	return n > 0
}

// close drops the subscription; the server delivers nothing to a pull
// whose reply subject has no subscriber.
func (p *puller) close() { _ = p.sub.Unsubscribe() } // a closed connection dropped it already
