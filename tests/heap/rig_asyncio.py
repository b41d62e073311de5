# A small run-to-completion asyncio for the heap rig on the WebAssembly port.
#
# That port's own asyncio hands every yield to JavaScript's timers and keeps a proxy object
# alive for each one until the JavaScript side lets go: the heap grows with the number of
# yields, whatever the program does (tests/heap/README.md shows the measurement). On a Pico,
# asyncio is frozen into the firmware and keeps nothing per yield. This module gives the
# firmware the part of asyncio it uses (create_task, Event, sleep_ms, gather, run and
# cancellation), running every task in this interpreter, so what the heap holds is the
# firmware's own state.
#
# The same port collects garbage only between calls from JavaScript (gc.collect() inside a
# running program just asks for it), so the rig runs in slices: start(coro), then pump(n)
# called repeatedly from outside. Each pump() begins right after a collection and records the
# live heap then: `live` (the latest sample) and `peak_live`. The unix port runs the same
# slices, so both ports' figures are sampled alike.
import gc
import time


class CancelledError(BaseException):
    pass


class TimeoutError(Exception):
    pass


_ready = []
_sleeping = []  # [deadline_ticks, task]
_current = None


class Task:
    def __init__(self, coro):
        self.coro = coro
        self.done = False
        self.value = None
        self.exc = None
        self.waiters = []
        self.blocked = None  # the Event or Task this task waits on
        self.pending = None  # an exception to throw in at the next step

    def cancel(self):
        if self.done:
            return False
        self.pending = CancelledError()
        _unblock(self)
        _ready.append(self)
        return True

    def __iter__(self):
        if not self.done:
            yield self
        if self.exc is not None:
            raise self.exc
        return self.value

    __await__ = __iter__


def _unblock(t):
    b = t.blocked
    t.blocked = None
    if b is not None and t in b.waiters:
        b.waiters.remove(t)
    for s in _sleeping:
        if s[1] is t:
            _sleeping.remove(s)
            break
    if t in _ready:
        _ready.remove(t)


class Event:
    def __init__(self):
        self.state = False
        self.waiters = []

    def is_set(self):
        return self.state

    def set(self):
        self.state = True
        w = self.waiters
        while w:
            t = w.pop()
            t.blocked = None
            _ready.append(t)

    def clear(self):
        self.state = False

    def wait(self):
        if not self.state:
            yield self
        return True


class ThreadSafeFlag(Event):
    """asyncio.ThreadSafeFlag: an Event that clears itself when a waiter takes it (no IRQs here)."""

    def wait(self):
        if not self.state:
            yield self
        self.state = False
        return True


_CHECKPOINT = object()
_slice_end = False


def checkpoint():
    """End the current slice: the task resumes after the next collection and sample."""
    yield _CHECKPOINT


def sleep_ms(ms):
    yield ms if ms > 0 else 0


def sleep(s):
    yield int(s * 1000)


def create_task(coro):
    t = Task(coro)
    _ready.append(t)
    return t


def current_task():
    return _current


async def gather(*tasks):
    out = []
    for t in tasks:
        out.append(await t)
    return out


def _finish(t, value, exc):
    t.done = True
    t.value = value
    t.exc = exc
    for w in t.waiters:
        w.blocked = None
        _ready.append(w)
    t.waiters = []


def _step(t):
    global _current
    _current = t
    try:
        e = t.pending
        if e is not None:
            t.pending = None
            y = t.coro.throw(e)
        else:
            y = t.coro.send(None)
    except StopIteration as s:
        _finish(t, s.value, None)
        return
    except BaseException as e:  # noqa: B036 - a task's failure is its result
        _finish(t, None, e)
        return
    finally:
        _current = None
    if y is None or y == 0:
        _ready.append(t)
    elif y is _CHECKPOINT:
        global _slice_end
        _slice_end = True
        _ready.append(t)
    elif isinstance(y, int):
        _sleeping.append([time.ticks_add(time.ticks_ms(), y), t])
    elif isinstance(y, Event):
        t.blocked = y
        y.waiters.append(t)
    elif isinstance(y, Task):
        if y.done:
            _ready.append(t)
        else:
            t.blocked = y
            y.waiters.append(t)
    else:
        _finish(t, None, RuntimeError("task yielded %r" % (y,)))


live = 0
peak_live = 0
samples = 0
_main = None


def start(coro):
    global _main
    _main = create_task(coro)


def pump(n):
    """Run up to n task steps; True once the main task is done. Call gc.collect() before it
    (on the unix port) or return to JavaScript between calls (WebAssembly port)."""
    global live, peak_live, samples, _slice_end
    _slice_end = False
    live = gc.mem_alloc()
    samples += 1
    if live > peak_live:
        peak_live = live
    main = _main
    while n > 0 and not main.done and not _slice_end:
        n -= 1
        if _ready:
            _step(_ready.pop(0))
            continue
        if not _sleeping:
            raise RuntimeError("deadlock: every task waits and nothing is due")
        now = time.ticks_ms()
        due = _sleeping[0]
        for s in _sleeping:
            if time.ticks_diff(s[0], due[0]) < 0:
                due = s
        if time.ticks_diff(due[0], now) > 0:
            time.sleep_ms(time.ticks_diff(due[0], now))
        _sleeping.remove(due)
        _ready.append(due[1])
    gc.collect()  # on the WebAssembly port: done at the next call from JavaScript
    return main.done


def result():
    if _main.exc is not None:
        raise _main.exc
    return _main.value


def run(coro):
    start(coro)
    while True:
        gc.collect()
        if pump(200):
            return result()
