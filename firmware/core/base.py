# What every firmware module builds on: the one refusal type, and const() for CPython.
#
# const(): MicroPython's compiler folds `_X = const(n)` by the name `const`, wherever it was
# imported from, so the firmware's constants cost no RAM on a Pico. CPython has no micropython
# module: the host's property tests load core/ by path and get the identity function instead.
try:
    from micropython import const
except ImportError:  # CPython (host property tests)
    def const(x):
        return x


class Refusal(ValueError):
    """A refused request or a rejected value, from any layer (core, library, link, protocol).
    .code is a stable token for scripts and the log; .msg a sentence for people, in the units
    the user gave. services/protocol.py replies with both; the request has changed nothing."""

    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code
        self.msg = msg
