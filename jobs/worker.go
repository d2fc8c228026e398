package jobs

import (
	"context"
	"fmt"

	"github.com/ppool/ppool/workerproc"
)

// runTask is the one worker function behind every kind: it looks the kind
// up and runs the task, a part of it, or the merge of its parts.
var runTask = workerproc.Register("jobs.task", func(ctx context.Context, t Task) (Outcome, error) {
	k, ok := kinds[t.Kind]
	if !ok {
		return Outcome{}, fmt.Errorf("this worker has no job kind %q", t.Kind)
	}
	var o *Outcome
	var err error
	switch t.Mode {
	case "merge":
		if k.Merge == nil {
			return Outcome{}, fmt.Errorf("%s: kind cannot merge parts", t.Kind)
		}
		o, err = k.Merge(ctx, &t)
	default:
		o, err = k.Run(ctx, &t)
	}
	if err != nil {
		return Outcome{}, err
	}
	if o == nil {
		o = &Outcome{Output: t.Output}
	}
	if t.Mode == "part" {
		// The journal keeps finished parts, for --resume to reuse.
		if t.Part != nil && t.Part.Path != "" {
			if o.OutputHash, err = hashFile(t.Part.Path); err != nil {
				return Outcome{}, fmt.Errorf("the part succeeded but its output is unreadable: %w", err)
			}
		}
		return *o, nil
	}
	// The hashes the journal needs, while the files are in the page cache.
	if o.OutputHash, err = hashFile(t.Output); err != nil {
		return Outcome{}, fmt.Errorf("the task succeeded but its output is unreadable: %w", err)
	}
	if t.Mode == "run" {
		for _, in := range t.Inputs {
			if in.Path == "" {
				continue
			}
			if o.InputHashes == nil {
				o.InputHashes = map[string]string{}
			}
			if o.InputHashes[in.Path], err = hashFile(in.Path); err != nil {
				return Outcome{}, fmt.Errorf("input %s: %w", in.Path, err)
			}
		}
	}
	return *o, nil
})
