# Protocol v1 dispatcher: a frame in, a frame out. Every failure becomes an error reply with a
# code and a sentence; nothing raised here can reach the control loop (see App.link_loop), and a
# request changes state only after it has been fully validated.
from core.base import Refusal
from services import link

VERSION = 1

# Replies are cached by sequence number so that a host retrying after a lost reply gets the
# same answer instead of running a therapy command twice.
_CACHE = 4


def _err(seq, code, msg):
    return link.encode({"s": seq, "ok": False, "e": {"code": code, "msg": msg}})


class Protocol:
    def __init__(self, handlers, authorise=None):
        """handlers: dict command -> callable(args dict) -> reply data (JSON-able).
        authorise: callable(cmd, body, req, mac) -> role, raising Refusal, or None."""
        self.handlers = handlers
        self.authorise = authorise
        self._recent = []  # (seq, body, reply) of the last few requests
        self.frames_ok = 0
        self.frames_bad = 0

    def handle_line(self, line):
        """Reply bytes for one received line, or None when the line is not a frame."""
        if line is None:
            self.frames_bad += 1
            return _err(None, "TOO_LONG", "frame longer than %d bytes was dropped" % link.MAX_FRAME)
        try:
            parts = link.decode(line)
        except link.LinkError as e:
            self.frames_bad += 1
            return _err(None, e.code, e.msg)
        if parts is None:
            return None  # REPL chatter, not ours
        body, mac = parts
        seq = None
        try:
            req = link.parse_body(body)
            seq = req.get("s")
            if type(seq) is not int or seq < 0 or seq >= 1 << 30:
                seq = None
                raise Refusal("BAD_SEQ", "field s must be a sequence number 0..2**30-1")
            for s, b, reply in self._recent:
                if s == seq and b == body:
                    return reply  # a retry of a request already answered
            cmd = req.get("c")
            if type(cmd) is not str:
                raise Refusal("BAD_CMD", "field c must name a command")
            fn = self.handlers.get(cmd)
            if fn is None:
                raise Refusal("UNKNOWN_CMD", "unknown command %r" % cmd[:40])
            args = req.get("a", {})
            if not isinstance(args, dict):
                raise Refusal("BAD_ARGS", "field a must be an object of arguments")
            if self.authorise is not None:
                self.authorise(cmd, body, req, mac)
            data = fn(args)
            reply = link.encode({"s": seq, "ok": True, "d": data})
            self.frames_ok += 1
        except link.LinkError as e:
            self.frames_bad += 1
            return _err(seq, e.code, e.msg)
        except Refusal as e:  # from any layer: the request changed nothing
            reply = _err(seq, e.code, e.msg)
        except Exception as e:  # anything else is a bug: said as one, never a dead link
            reply = _err(seq, "INTERNAL", "internal error handling the request: %s" % (repr(e)[:120],))
        if seq is not None:
            self._recent.append((seq, body, reply))
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
