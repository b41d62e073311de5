# Protocol v1 dispatcher: a frame in, a frame out. Every failure becomes an error reply with a
# code and a sentence; nothing raised here can reach the control loop (see App.link_loop), and a
# request changes state only after it has been fully validated.
import gc
from binascii import crc32

from core.base import Refusal
from services import link

_READ_RETRIES = 3  # a read met by MemoryError: asked again this many times at most

VERSION = 1

# Replies to authenticated requests are cached so that a host retrying after a lost reply gets
# the same answer instead of running a therapy command twice. Only a request that passed
# authentication is cached, keyed on its sequence number, body AND MAC: a copy with another MAC
# is checked afresh (and refused), so nobody without the key can plant a reply for the
# clinician's next request or fetch a cached one (issue 16). A repeat answered from the cache
# says so ("cached": true) and is reported as a repeat.
_CACHE = 4
_CACHED = b'{"cached":true,'


def _err(seq, code, msg):
    return link.encode({"s": seq, "ok": False, "e": {"code": code, "msg": msg}})


def _as_cached(reply):
    # The cached reply with "cached":true first in its object; a reply frame is $JSON*CRC\n
    inner = _CACHED + reply[2:-10]
    return b"$" + inner + b"*" + (b"%08x" % (crc32(inner) & 0xFFFFFFFF)) + b"\n"


class Protocol:
    def __init__(self, handlers, authorise=None, report=None, reads=(), short_of_memory=None):
        """handlers: dict command -> callable(args dict) -> reply data (JSON-able).
        reads: the commands that change nothing (status, log, ...): one that meets a
        MemoryError is run again (up to _READ_RETRIES times) after a collection and a call of
        short_of_memory() (the log's pages shrink), since running it again is harmless.
        authorise: callable(cmd, body, req, mac) -> role, raising Refusal, or None.
        report: callable(stage, code, cmd, role) told of every refusal and repeat, or None.
        stage is "frame" (not a well-formed request), "auth" (authorise refused it),
        "command" (the handler refused it; role is who asked), "internal" (a bug) or
        "repeat" (answered from the cache; code None)."""
        self.handlers = handlers
        self.reads = reads
        self.short_of_memory = short_of_memory
        self.authorise = authorise
        self.report = report
        self._recent = []  # (seq, body, mac, reply) of the last few authenticated requests
        self.frames_ok = 0
        self.frames_bad = 0
        self.repeats = 0

    def _report(self, stage, code, cmd, role):
        if self.report is not None:
            try:
                self.report(stage, code, cmd, role)
            except Exception:
                pass  # the log is the pump's business; the reply still goes out

    def handle_line(self, line):
        """Reply bytes for one received line, or None when the line is not a frame."""
        if line is None:
            self.frames_bad += 1
            self._report("frame", "TOO_LONG", None, None)
            return _err(None, "TOO_LONG", "frame longer than %d bytes was dropped" % link.MAX_FRAME)
        try:
            parts = link.decode(line)
        except link.LinkError as e:
            self.frames_bad += 1
            self._report("frame", e.code, None, None)
            return _err(None, e.code, e.msg)
        if parts is None:
            return None  # REPL chatter, not ours
        body, mac = parts
        seq = None
        cmd = None
        role = None
        stage = "frame"
        try:
            req = link.parse_body(body)
            seq = req.get("s")
            if type(seq) is not int or seq < 0 or seq >= 1 << 30:
                seq = None
                raise Refusal("BAD_SEQ", "field s must be a sequence number 0..2**30-1")
            if mac is not None:
                for s, b, m, reply in self._recent:
                    if s == seq and m == mac and b == body:
                        self.repeats += 1
                        c = req.get("c")
                        self._report("repeat", None, c if type(c) is str else None, req.get("r"))
                        return _as_cached(reply)  # a retry of a request already answered
            cmd = req.get("c")
            if type(cmd) is not str:
                cmd = None
                raise Refusal("BAD_CMD", "field c must name a command")
            fn = self.handlers.get(cmd)
            if fn is None:
                raise Refusal("UNKNOWN_CMD", "unknown command %r" % cmd[:40])
            args = req.get("a", {})
            if not isinstance(args, dict):
                raise Refusal("BAD_ARGS", "field a must be an object of arguments")
            if self.authorise is not None:
                stage = "auth"
                role = self.authorise(cmd, body, req, mac)
            stage = "command"
            tries = _READ_RETRIES if cmd in self.reads else 0
            while True:
                try:
                    reply = link.encode({"s": seq, "ok": True, "d": fn(args)})
                    break
                except MemoryError:
                    # The rp2 port's heap fragments: after a RUN-pin reset it was seen with 65
                    # KB free and no block for a 10-record log page. A command that changes
                    # nothing is asked again after a collection, with smaller log pages; any
                    # other is said to be short of memory (it may have acted).
                    gc.collect()
                    if tries <= 0:
                        raise
                    tries -= 1
                    if self.short_of_memory is not None:
                        self.short_of_memory()
            self.frames_ok += 1
        except link.LinkError as e:
            self.frames_bad += 1
            self._report("frame", e.code, None, None)
            return _err(seq, e.code, e.msg)
        except Refusal as e:  # from any layer: the request changed nothing
            reply = _err(seq, e.code, e.msg)
            self._report(stage, e.code, cmd, role)
        except MemoryError:
            reply = _err(seq, "NO_MEMORY", "the pump ran short of memory answering this request; ask again (status says what took effect)")
            self._report("internal", "NO_MEMORY", cmd, role)
        except Exception as e:  # anything else is a bug: said as one, never a dead link
            reply = _err(seq, "INTERNAL", "internal error handling the request: %s" % (repr(e)[:120],))
            self._report("internal", "INTERNAL", cmd, role)
        if stage == "command" and mac is not None and role is not None and role != "anyone":
            self._recent.append((seq, body, mac, reply))
            if len(self._recent) > _CACHE:
                self._recent.pop(0)
        return reply


def arg(args, name, kind, lo=None, hi=None, default=None, required=True):
    """Fetch and check one argument; raise Refusal naming it when it is wrong."""
    if name not in args:
        if required and default is None:
            raise Refusal("BAD_ARGS", "missing argument %s" % name)
        return default
    v = args[name]
    if kind is int:
        if type(v) is not int:
            raise Refusal("BAD_ARGS", "argument %s must be a whole number" % name)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise Refusal("RANGE", "argument %s=%d is outside %s..%s" % (name, v, lo, hi))
    elif kind is str:
        if type(v) is not str or len(v) > 200:
            raise Refusal("BAD_ARGS", "argument %s must be a short string" % name)
    elif kind is dict:
        if not isinstance(v, dict):
            raise Refusal("BAD_ARGS", "argument %s must be an object" % name)
    elif kind is bool:
        if type(v) is not bool:
            raise Refusal("BAD_ARGS", "argument %s must be true or false" % name)
    return v
