# Tiny test support for firmware tests that run on the real MicroPython interpreter.
# MicroPython functions take no attributes, so requirement tags live in a registry.
REQS = {}


def req(*ids):
    """Tag a test with the safety requirement IDs (SR-nnn) it proves."""
    def deco(f):
        REQS[f.__name__] = ids
        return f
    return deco


def eq(a, b, msg=""):
    if a != b:
        raise AssertionError("%r != %r %s" % (a, b, msg))


def raises(exc, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except exc as e:
        return e
    raise AssertionError("%s not raised by %r" % (exc.__name__, fn))
