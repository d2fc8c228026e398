package pool

import (
	"errors"
	"reflect"
	"testing"
)

// blame moves a pack's failure onto each of its tasks in one way, for every
// failure type that embeds TaskRef: a copy with the task's id and function,
// the same worker and details, and the original untouched.
func TestBlameAttachesTaskRef(t *testing.T) {
	pack := TaskRef{Task: 1, Function: "pack", PID: 42}
	member := &task{id: 9, fn: "square"}
	for _, err := range []taskFailure{
		&WorkerExitError{TaskRef: pack, ExitCode: 3, Reason: "pipe closed"},
		&TimeoutError{TaskRef: pack, Timeout: 5},
		&MemoryLimitError{TaskRef: pack, Limit: 1, Seen: 2},
		&RemoteError{TaskRef: pack, Type: "panic", Message: "m"},
		&CancelledError{TaskRef: pack, Cause: errors.New("why")},
	} {
		before := reflect.ValueOf(err).Elem().Interface()
		got := blame(err, member)
		if reflect.TypeOf(got) != reflect.TypeOf(err) {
			t.Fatalf("blame(%T) returned a %T", err, got)
		}
		ref := *got.(taskFailure).taskRef()
		if want := (TaskRef{Task: 9, Function: "square", PID: 42}); ref != want {
			t.Errorf("%T: TaskRef %+v, want %+v", err, ref, want)
		}
		if after := reflect.ValueOf(err).Elem().Interface(); !reflect.DeepEqual(before, after) {
			t.Errorf("%T: blame changed the pack's failure", err)
		}
		// Everything but the reference is the pack's.
		c := reflect.ValueOf(got).Elem()
		o := reflect.ValueOf(err).Elem()
		for i := range c.NumField() {
			if c.Type().Field(i).Name == "TaskRef" {
				continue
			}
			if !reflect.DeepEqual(c.Field(i).Interface(), o.Field(i).Interface()) {
				t.Errorf("%T: field %s changed", err, c.Type().Field(i).Name)
			}
		}
	}
	other := errors.New("anything else")
	if got := blame(other, member); !errors.Is(got, other) {
		t.Errorf("blame of a plain error lost it: %v", got)
	}
}
