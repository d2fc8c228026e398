#!/usr/bin/env python3
"""A ppool worker in plain Python 3: no third-party packages.

ppool starts it with the task pipes on file descriptors 3 (master -> worker)
and 4 (worker -> master); docs/protocol.md describes everything said on them.
It is not meant to be run by hand:

    pool.Config{Command: []string{"/usr/bin/python3", "examples/pyworker/worker.py"}}
    ppool worker check /usr/bin/python3 examples/pyworker/worker.py

To serve functions of your own, import this file and register them:

    import worker

    @worker.function("my.double")
    def double(ctx, x):
        return 2 * x

    worker.main()

A function takes a Context and the decoded argument and returns a value that
msgpack can carry (None, bool, int, float, str, bytes, list, tuple, dict;
Float32, FrozenMap and Ext for what Python has no type of its own for).
Raise BadArguments for an argument of the wrong shape, TaskError for an
expected failure; any other exception is reported with its class name and
traceback, and the worker stays up. A long function should call ctx.check()
now and then, or sleep with ctx.sleep(), so that a cancel or the task's
timeout stops it.
"""

import os
import re
import struct
import sys
import threading
import time
import traceback
from collections import deque
from math import fsum

VERSIONS = [1]  # protocol versions this worker speaks
FROM_MASTER, TO_MASTER = 3, 4
DEFAULT_MAX_FRAME = 256 << 20

# How deeply arrays and maps may nest: the rule package ipc applies today
# (ipc/msgpack.go, MaxDepth and its callers), which this worker must match
# exactly on both sides. A frame's message map is not counted; each value
# under it ("a" of a task, "v" of a result, any unknown key's) may hold
# MAX_DEPTH levels of arrays and maps, itself being the first level if it is
# one. A batch result's "v" is such a value: its array and each item's map
# take two of those levels, leaving BATCH_ITEM_DEPTH for an item's value.
# If ipc ever counts the message map as the first level, set
# MESSAGE_MAP_LEVELS to 1: everything below follows.
MAX_DEPTH = 100
MESSAGE_MAP_LEVELS = 0
VALUE_DEPTH = MAX_DEPTH - MESSAGE_MAP_LEVELS  # levels a value under the message map may hold
BATCH_ITEM_DEPTH = VALUE_DEPTH - 2  # levels an item's value in a batch result may hold


# --- A msgpack subset: every type on the wire, nothing more. ---------------


class Ext:
    """A msgpack extension value, passed through unchanged."""

    def __init__(self, code, data):
        self.code, self.data = code, data

    def __eq__(self, other):
        return isinstance(other, Ext) and (self.code, self.data) == (other.code, other.data)

    def __hash__(self):  # an ext may be a map key
        return hash((self.code, self.data))

    def __repr__(self):
        return "Ext(%d, %r)" % (self.code, self.data)


class Float32(float):
    """A float that arrived as a msgpack float32 and is sent back as one, so
    that a caller expecting a float32 can decode it. Arithmetic on it gives
    ordinary floats (float64 on the wire)."""


class FrozenMap:
    """A msgpack map used as a map key (Python's dict cannot be one): its
    pairs in order, hashable, sent back as a map."""

    def __init__(self, pairs):
        self.pairs = tuple(pairs)

    def items(self):
        return self.pairs

    def __len__(self):
        return len(self.pairs)

    def __eq__(self, other):
        return isinstance(other, FrozenMap) and self.pairs == other.pairs

    def __hash__(self):
        return hash(self.pairs)

    def __repr__(self):
        return "FrozenMap(%r)" % (self.pairs,)


def hashable_key(k):
    """A map key as a hashable value: msgpack allows any value as a key, an
    array or a map too. Arrays become tuples (sent back as arrays), maps
    FrozenMaps, at every level."""
    if isinstance(k, list):
        return tuple(hashable_key(x) for x in k)
    if isinstance(k, dict):
        return FrozenMap((hashable_key(a), hashable_key(b)) for a, b in k.items())
    return k


class Raw:
    """Bytes that are already one encoded msgpack value."""

    def __init__(self, data):
        self.data = data


class FormatError(ValueError):
    """Bytes that are not exactly one well-formed msgpack value."""


def packb(obj, depth=VALUE_DEPTH):
    """Encodes obj, which may hold depth levels of arrays and maps."""
    out = bytearray()
    _pack(obj, out, depth, depth)
    return bytes(out)


def _pack_len(out, n, fix_limit, fix_base, codes):
    # codes: the 8-, 16- and 32-bit length type bytes (None if absent).
    if n < fix_limit:
        out.append(fix_base | n)
    elif codes[0] is not None and n <= 0xFF:
        out += struct.pack(">BB", codes[0], n)
    elif n <= 0xFFFF:
        out += struct.pack(">BH", codes[1], n)
    elif n <= 0xFFFFFFFF:
        out += struct.pack(">BI", codes[2], n)
    else:
        raise ValueError("msgpack: length %d too large" % n)


def _pack(o, out, depth, limit):
    # depth: levels of arrays and maps left for o; limit: the whole budget,
    # for the message.
    if depth <= 0 and isinstance(o, (list, tuple, dict, FrozenMap)):
        raise ValueError("msgpack: value nested deeper than %d levels of arrays and maps" % limit)
    if o is None:
        out.append(0xC0)
    elif o is True or o is False:
        out.append(0xC3 if o else 0xC2)
    elif isinstance(o, int):
        if 0 <= o <= 0x7F or -32 <= o < 0:
            out.append(o & 0xFF)
        elif o >= 0:
            for code, fmt, top in ((0xCC, ">BB", 0xFF), (0xCD, ">BH", 0xFFFF),
                                   (0xCE, ">BI", 0xFFFFFFFF), (0xCF, ">BQ", 0xFFFFFFFFFFFFFFFF)):
                if o <= top:
                    out += struct.pack(fmt, code, o)
                    return
            raise OverflowError("msgpack: integer %d does not fit in 64 bits" % o)
        else:
            for code, fmt, low in ((0xD0, ">Bb", -0x80), (0xD1, ">Bh", -0x8000),
                                   (0xD2, ">Bi", -0x80000000), (0xD3, ">Bq", -0x8000000000000000)):
                if o >= low:
                    out += struct.pack(fmt, code, o)
                    return
            raise OverflowError("msgpack: integer %d does not fit in 64 bits" % o)
    elif isinstance(o, Float32):
        out += struct.pack(">Bf", 0xCA, o)
    elif isinstance(o, float):
        out += struct.pack(">Bd", 0xCB, o)
    elif isinstance(o, Raw):
        out += o.data
    elif isinstance(o, str):
        b = o.encode("utf-8", "surrogateescape")
        _pack_len(out, len(b), 32, 0xA0, (0xD9, 0xDA, 0xDB))
        out += b
    elif isinstance(o, (bytes, bytearray, memoryview)):
        _pack_len(out, len(o), 0, 0, (0xC4, 0xC5, 0xC6))
        out += o
    elif isinstance(o, (list, tuple)):
        _pack_len(out, len(o), 16, 0x90, (None, 0xDC, 0xDD))
        for v in o:
            _pack(v, out, depth - 1, limit)
    elif isinstance(o, (dict, FrozenMap)):
        _pack_len(out, len(o), 16, 0x80, (None, 0xDE, 0xDF))
        for k, v in o.items():
            _pack(k, out, depth - 1, limit)
            _pack(v, out, depth - 1, limit)
    elif isinstance(o, Ext):
        n = len(o.data)
        fixed = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}
        if n in fixed:
            out.append(fixed[n])
        else:
            _pack_len(out, n, 0, 0, (0xC7, 0xC8, 0xC9))
        out += struct.pack(">b", o.code) + o.data
    else:
        raise TypeError("msgpack cannot carry a %s" % type(o).__name__)


def unpackb(data, depth=VALUE_DEPTH):
    """Decodes exactly one value, which may hold depth levels of arrays and
    maps. Every declared length is checked against the bytes that are left
    before anything is allocated for it."""
    u = _Unpacker(data, "%d levels of arrays and maps" % depth)
    v = u.value(depth)
    if u.pos != len(data):
        raise FormatError("msgpack: %d trailing bytes after the value" % (len(data) - u.pos))
    return v


class _Unpacker:
    # Fixed-size types: struct format of the payload.
    FIXED = {0xCA: ">f", 0xCB: ">d", 0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q",
             0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}
    # Length-prefixed types: (kind, struct format of the length).
    SIZED = {0xC4: ("bin", ">B"), 0xC5: ("bin", ">H"), 0xC6: ("bin", ">I"),
             0xD9: ("str", ">B"), 0xDA: ("str", ">H"), 0xDB: ("str", ">I"),
             0xDC: ("array", ">H"), 0xDD: ("array", ">I"),
             0xDE: ("map", ">H"), 0xDF: ("map", ">I"),
             0xC7: ("ext", ">B"), 0xC8: ("ext", ">H"), 0xC9: ("ext", ">I")}

    def __init__(self, data, limit):
        self.b, self.pos, self.limit = data, 0, limit  # limit: the nesting allowed, for errors

    def take(self, n):
        if n > len(self.b) - self.pos:
            raise FormatError("msgpack: value runs past the end of the frame")
        self.pos += n
        return self.b[self.pos - n:self.pos]

    def value(self, depth):
        c = self.take(1)[0]
        if c <= 0x7F:
            return c
        if c >= 0xE0:
            return c - 0x100
        if c == 0xC0:
            return None
        if c in (0xC2, 0xC3):
            return c == 0xC3
        if 0xA0 <= c <= 0xBF:
            return self.take(c & 0x1F).decode("utf-8", "surrogateescape")
        if 0x90 <= c <= 0x9F:
            return self.array(c & 0x0F, depth)
        if 0x80 <= c <= 0x8F:
            return self.map(c & 0x0F, depth)
        if c == 0xCA:
            return Float32(struct.unpack(">f", self.take(4))[0])
        if c in self.FIXED:
            fmt = self.FIXED[c]
            return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]
        if 0xD4 <= c <= 0xD8:
            code = struct.unpack(">b", self.take(1))[0]
            return Ext(code, bytes(self.take(1 << (c - 0xD4))))
        if c in self.SIZED:
            kind, fmt = self.SIZED[c]
            n = struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]
            if kind == "str":
                return self.take(n).decode("utf-8", "surrogateescape")
            if kind == "bin":
                return bytes(self.take(n))
            if kind == "array":
                return self.array(n, depth)
            if kind == "map":
                return self.map(n, depth)
            code = struct.unpack(">b", self.take(1))[0]
            return Ext(code, bytes(self.take(n)))
        raise FormatError("msgpack: type byte 0x%02x at offset %d is not valid" % (c, self.pos - 1))

    def array(self, n, depth):
        self.check(n, depth)
        return [self.value(depth - 1) for _ in range(n)]

    def map(self, n, depth):
        self.check(2 * n, depth)
        out = {}
        for _ in range(n):
            k = hashable_key(self.value(depth - 1))
            out[k] = self.value(depth - 1)
        return out

    def check(self, elements, depth):
        # Every element takes at least one byte: a larger count is a lie.
        if elements > len(self.b) - self.pos:
            raise FormatError("msgpack: value runs past the end of the frame")
        if depth <= 0:
            raise FormatError("msgpack: nesting deeper than %s" % self.limit)


# --- Errors a function may raise. -----------------------------------------


class TaskError(Exception):
    """An expected failure: reported as type "error", without a traceback."""


class BadArguments(Exception):
    """The argument is not what the function takes: type "bad_arguments"."""


class Cancelled(Exception):
    """The task was cancelled or ran past its timeout: type "cancelled"."""


class ProtocolError(Exception):
    """The master sent something this worker cannot read: it must exit."""


def error_map(exc):
    if isinstance(exc, Cancelled):
        return {"type": "cancelled", "msg": str(exc)}
    if isinstance(exc, BadArguments):
        return {"type": "bad_arguments", "msg": str(exc)}
    if isinstance(exc, TaskError):
        return {"type": "error", "msg": str(exc)}
    name = type(exc).__qualname__
    if type(exc).__module__ not in ("builtins", "__main__"):
        name = type(exc).__module__ + "." + name
    # The traceback starts at the function: the frame that called it is
    # this worker's plumbing.
    tb = exc.__traceback__.tb_next if exc.__traceback__ else None
    return {"type": name, "msg": str(exc) or name,
            "tb": "".join(traceback.format_exception(type(exc), exc, tb))}


# --- The registry. ----------------------------------------------------------

FUNCTIONS = {}


def function(name):
    """Registers fn(ctx, arg) under name."""
    def register(fn):
        if name in FUNCTIONS:
            raise ValueError("function %r registered twice" % name)
        FUNCTIONS[name] = fn
        return fn
    return register


def want(cond, what):
    if not cond:
        raise BadArguments(what)


def is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


# The built-ins every worker serves, so that ppool can check it.

@function("ppool.echo")
def _echo(ctx, arg):
    return arg


@function("ppool.sleep")
def _sleep(ctx, seconds):
    want(is_number(seconds), "ppool.sleep takes a number of seconds, not %s" % type(seconds).__name__)
    ctx.sleep(seconds)
    return None


@function("ppool.fail")
def _fail(ctx, msg):
    want(isinstance(msg, str), "ppool.fail takes a string, not %s" % type(msg).__name__)
    raise TaskError(msg)


@function("ppool.panic")
def _panic(ctx, msg):
    want(isinstance(msg, str), "ppool.panic takes a string, not %s" % type(msg).__name__)
    raise RuntimeError(msg)


# Real work.

@function("py.fib")
def fib(ctx, n):
    """The n-th Fibonacci number, for 0 <= n <= 92 (it fits in an int64)."""
    want(isinstance(n, int) and not isinstance(n, bool), "py.fib takes an integer, not %s" % type(n).__name__)
    if not 0 <= n <= 92:
        raise ValueError("py.fib(%d): n must be between 0 and 92" % n)
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


@function("py.sum")
def total(ctx, xs):
    """The exact sum of a list of numbers, as a float."""
    want(isinstance(xs, list), "py.sum takes a list of numbers, not %s" % type(xs).__name__)
    step = 1 << 16
    parts = []
    for i in range(0, len(xs), step):
        chunk = xs[i:i + step]
        want(all(is_number(x) for x in chunk), "py.sum: every element must be a number")
        parts.append(fsum(chunk))
        ctx.progress(min(i + step, len(xs)), len(xs))
        ctx.check()
    return fsum(parts)


@function("py.wordcount")
def wordcount(ctx, text):
    """How often each word occurs in text, case folded."""
    want(isinstance(text, str), "py.wordcount takes a string, not %s" % type(text).__name__)
    counts = {}
    for w in re.findall(r"\w+", text.casefold()):
        counts[w] = counts.get(w, 0) + 1
    return counts


# --- The protocol. ----------------------------------------------------------


class Context:
    """What a running task can ask about itself."""

    def __init__(self, worker, task_id, timeout_ns):
        self._worker, self.task_id = worker, task_id
        self._event = threading.Event()
        self._reason = None
        self._deadline = time.monotonic() + timeout_ns / 1e9 if timeout_ns else None
        self._timeout = timeout_ns / 1e9 if timeout_ns else None
        self._last_progress = 0.0

    def cancel(self, reason):
        self._reason = reason
        self._event.set()

    def done(self):
        return self._event.is_set() or (self._deadline is not None and time.monotonic() >= self._deadline)

    def check(self):
        """Raises Cancelled if the task was cancelled or is past its timeout."""
        if self._event.is_set():
            raise Cancelled(self._reason)
        if self._deadline is not None and time.monotonic() >= self._deadline:
            raise Cancelled("deadline exceeded (timeout %gs)" % self._timeout)

    def sleep(self, seconds):
        """Sleeps, waking at once on a cancel or at the task's deadline."""
        end = time.monotonic() + max(0.0, seconds)
        if self._deadline is not None:
            end = min(end, self._deadline)
        while not self._event.is_set():
            left = end - time.monotonic()
            if left <= 0:
                break
            self._event.wait(left)
        self.check()

    def progress(self, done, total):
        """Reports progress to the master; at most every 50 ms except the last."""
        now = time.monotonic()
        if done < total and now - self._last_progress < 0.05:
            return
        self._last_progress = now
        self._worker.send({"t": "progress", "id": self.task_id, "done": done, "total": total})


class FrameReader:
    """Reads length-prefixed frames, refusing one over the limit before
    reading (or allocating for) its payload."""

    def __init__(self, fd, max_frame):
        self.fd, self.max_frame = fd, max_frame
        self.buf, self.pos = bytearray(), 0

    def fill(self, n):
        while len(self.buf) - self.pos < n:
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return False
            if self.pos > 1 << 16:  # drop what has been consumed
                del self.buf[:self.pos]
                self.pos = 0
            self.buf += chunk
        return True

    def read(self):
        """The next frame's payload, or None at a clean end of stream."""
        if not self.fill(4):
            if len(self.buf) > self.pos:
                raise ProtocolError("the pipe closed inside a frame header")
            return None
        (n,) = struct.unpack_from(">I", self.buf, self.pos)
        if n > self.max_frame:
            raise ProtocolError("frame of %d bytes declared, over the limit of %d (PPOOL_MAX_FRAME)"
                                % (n, self.max_frame))
        if not self.fill(4 + n):
            raise ProtocolError("the pipe closed inside a frame")
        payload = bytes(self.buf[self.pos + 4:self.pos + 4 + n])
        self.pos += 4 + n
        return payload


class Writer:
    """Owns fd 4. Frames queued while it is writing go out together, and
    none waits behind a slow task: the writer thread runs whenever the task
    thread lets go of the GIL, and the task thread drains it before it starts
    a task."""

    def __init__(self, fd):
        self.fd = fd
        self.cond = threading.Condition()
        self.pending = bytearray()
        self.closing = False
        self.writing = False
        self.error = None
        self.thread = threading.Thread(target=self.run, name="ppool-writer", daemon=True)
        self.thread.start()

    def send(self, frame):
        with self.cond:
            self.pending += frame
            self.cond.notify_all()

    def run(self):
        while True:
            with self.cond:
                while not self.pending and not self.closing:
                    self.cond.wait()
                data, self.pending = self.pending, bytearray()
                if not data:
                    return
                self.writing = True
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self.fd, view):]
            except OSError as e:  # the master is gone
                self.error = e
            with self.cond:
                self.writing = False
                self.cond.notify_all()
            if self.error is not None:
                return

    def drain(self):
        """Waits until everything sent so far is written. The results of
        finished tasks must be out before the next task starts: if that one
        crashes the worker, the master must know the others were done."""
        with self.cond:
            while (self.pending or self.writing) and self.error is None:
                self.cond.wait()

    def close(self):
        """Writes what is queued, then stops."""
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        self.thread.join()


def frame(msg):
    # The message map is one level more than the values under it.
    body = packb(msg, VALUE_DEPTH + 1)
    return struct.pack(">I", len(body)) + body


def unpack_message(payload):
    """Decodes a frame's payload: the message map, and under it values of at
    most VALUE_DEPTH levels of arrays and maps."""
    u = _Unpacker(payload, "%d levels of arrays and maps in a value under the message map" % VALUE_DEPTH)
    msg = u.value(VALUE_DEPTH + 1)
    if u.pos != len(payload):
        raise FormatError("msgpack: %d trailing bytes after the value" % (len(payload) - u.pos))
    return msg


class Worker:
    def __init__(self, functions, max_frame):
        self.functions = functions
        self.max_frame = max_frame
        self.cond = threading.Condition()
        self.queue = deque()   # tasks received and not started, in order
        self.end = None        # why no more tasks will come: "shutdown", "eof" or an error
        self.running = None    # the Context of the running task
        self.cancelled = set()  # ids of queued tasks cancelled before they start
        self.writer = Writer(TO_MASTER)

    def send(self, msg):
        self.writer.send(frame(msg))

    # The reader thread owns fd 3: tasks go into the queue, a cancel acts at
    # once so that the running task can be stopped.

    def read(self):
        reader = FrameReader(FROM_MASTER, self.max_frame)
        while True:
            try:
                payload = reader.read()
                if payload is None:
                    self.close("eof")
                    return
                msg = unpack_message(payload)
                self.handle(msg)
            except (ProtocolError, FormatError, OSError) as e:
                self.close(e)
                return
            except Exception as e:  # a bug here must not hang the master
                self.close(ProtocolError("reading from the master: %r" % e))
                return
            if msg.get("t") == "shutdown":
                return

    def handle(self, msg):
        if not isinstance(msg, dict):
            raise ProtocolError("a frame is not a map")
        kind = msg.get("t")
        if kind == "task":
            tid, fn = msg.get("id"), msg.get("fn")
            if not isinstance(tid, int) or tid < 0 or not isinstance(fn, str):
                raise ProtocolError("a task without an integer id and a function name: %r" % msg)
            timeout = msg.get("to", 0)
            if not isinstance(timeout, int) or timeout < 0:
                raise ProtocolError("task %d: timeout %r is not a count of nanoseconds" % (tid, timeout))
            with self.cond:
                self.queue.append(msg)
                self.cond.notify()
        elif kind == "cancel":
            tid = msg.get("id")
            with self.cond:
                if self.running is not None and self.running.task_id == tid:
                    self.running.cancel("cancelled by the master")
                elif any(t["id"] == tid for t in self.queue):
                    self.cancelled.add(tid)
                # Otherwise it has been answered already: nothing to do.
        elif kind == "shutdown":
            self.close("shutdown")
        elif kind in ("hello", "result", "progress"):
            raise ProtocolError("the master sent a %s frame, which only workers send" % kind)
        else:
            raise ProtocolError("unknown message type %r" % (kind,))

    def close(self, why):
        with self.cond:
            if self.end is None:
                self.end = why
                if why == "eof" and self.running is not None:
                    # Nobody is left to read the answer.
                    self.running.cancel("the master closed its pipe")
            self.cond.notify()

    # The main thread runs tasks one at a time, in the order they came.

    def serve(self):
        threading.Thread(target=self.read, name="ppool-reader", daemon=True).start()
        while True:
            with self.cond:
                while not self.queue and self.end is None:
                    self.cond.wait()
                if self.end is not None:
                    break
                task = self.queue.popleft()
                if task["id"] in self.cancelled:
                    self.cancelled.discard(task["id"])
                    ctx = None
                else:
                    ctx = self.running = Context(self, task["id"], task.get("to", 0))
            if ctx is None:
                self.reply(task, error={"type": "cancelled", "msg": "cancelled before it started"})
                continue
            self.writer.drain()
            self.run(task, ctx)
            with self.cond:
                self.running = None
            if self.writer.error is not None:
                break
        return self.finish()

    def finish(self):
        with self.cond:
            end, queued = self.end, list(self.queue)
        if end == "shutdown":
            # Tasks still queued are answered, so that the master never
            # waits on them.
            for task in queued:
                self.reply(task, error={"type": "cancelled", "msg": "worker shutting down"})
        self.writer.close()
        if self.writer.error is not None:
            print("ppool worker %d: writing to the master: %s" % (os.getpid(), self.writer.error), file=sys.stderr)
            return 1
        if isinstance(end, Exception):
            print("ppool worker %d: %s" % (os.getpid(), end), file=sys.stderr)
            return 1
        return 0

    def run(self, task, ctx):
        start = time.monotonic_ns()
        fn = self.functions.get(task["fn"])
        if fn is None:
            self.reply(task, error={"type": "unknown_function",
                                    "msg": "worker %d serves no function %r" % (os.getpid(), task["fn"])})
            return
        args = task.get("a")
        if not task.get("b"):
            value, error = call(fn, ctx, args)
            self.reply(task, value, error, time.monotonic_ns() - start)
            return
        if not isinstance(args, list):
            self.reply(task, error={"type": "bad_arguments", "msg": "batch arguments are not an array"})
            return
        items = []
        for arg in args:
            try:
                ctx.check()  # once cancelled, the items left fail at once
            except Cancelled as e:
                items.append({"e": error_map(e)})
                continue
            value, error = call(fn, ctx, arg, BATCH_ITEM_DEPTH)
            items.append({"e": error} if error else {"v": value})
        self.reply(task, items, None, time.monotonic_ns() - start)

    def reply(self, task, value=None, error=None, duration=0):
        msg = {"t": "result", "id": task["id"], "d": max(0, duration)}
        if task.get("b"):
            msg["b"] = True
        if error is not None:
            msg["e"] = error
        else:
            msg["v"] = value
        out = frame(msg)
        if len(out) - 4 > self.max_frame:
            # The master would refuse the frame and kill this worker.
            del msg["v"]
            msg["e"] = {"type": "error", "msg": "%s: the result takes %d bytes, over the limit of %d (PPOOL_MAX_FRAME)"
                        % (task["fn"], len(out) - 4, self.max_frame)}
            out = frame(msg)
        self.writer.send(out)


def call(fn, ctx, arg, depth=VALUE_DEPTH):
    """Runs fn and encodes its value, which may hold depth levels of arrays
    and maps: returns (Raw, None) or (None, error map)."""
    try:
        value = fn(ctx, arg)
    except Exception as e:
        return None, error_map(e)
    try:
        return Raw(packb(value, depth)), None
    except (TypeError, ValueError, OverflowError) as e:
        # A value that cannot be sent fails this call only.
        return None, {"type": "error", "msg": "the result cannot be sent: %s" % e}


def main(functions=None):
    """Serves FUNCTIONS (or the given dict) on fds 3 and 4 until the master
    says shutdown or closes its pipe, then exits."""
    functions = dict(FUNCTIONS if functions is None else functions)
    for name, fn in FUNCTIONS.items():
        if name.startswith("ppool."):
            functions.setdefault(name, fn)
    for fd in (FROM_MASTER, TO_MASTER):
        try:
            os.fstat(fd)
        except OSError:
            print("fd %d is not open: this program is a ppool worker, started by ppool "
                  "(see docs/protocol.md)" % fd, file=sys.stderr)
            sys.exit(2)
        os.set_inheritable(fd, False)  # programs we start must not hold the pipes
    sys.stdout.reconfigure(line_buffering=True)  # output is the master's log

    max_frame = DEFAULT_MAX_FRAME
    try:
        max_frame = int(os.environ.get("PPOOL_MAX_FRAME", "")) or max_frame
    except ValueError:
        pass
    if max_frame <= 0:
        max_frame = DEFAULT_MAX_FRAME

    worker = Worker(functions, max_frame)
    rt = "%s %s" % (sys.implementation.name, ".".join(map(str, sys.version_info[:3])))
    worker.send({"t": "hello", "vs": VERSIONS, "pid": os.getpid(), "fns": sorted(functions), "rt": rt})

    # Say hello first in any case: the master then refuses us with an error
    # that names both sides' versions, which is clearer than a silent exit.
    master = os.environ.get("PPOOL_PROTOCOL")
    if master is not None:
        try:
            spoken = [int(v) for v in master.split(",")]
        except ValueError:
            spoken = []
        if not set(spoken) & set(VERSIONS):
            worker.writer.close()
            print("ppool worker %d: no common protocol version: ppool speaks %s, this worker speaks %s"
                  % (os.getpid(), master, ",".join(map(str, VERSIONS))), file=sys.stderr)
            sys.exit(1)

    code = worker.serve()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the reader thread may still sit in a read of fd 3


if __name__ == "__main__":
    main()
