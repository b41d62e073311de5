# Runs firmware test modules (mp_test_*.py) on the MicroPython interpreter and prints one
# machine-readable line per test: the pytest plugin in tests/conftest.py turns them into items.
#   micropython mprun.py [--list] ROOT MODULE
import sys
import json

args = sys.argv[1:]
listing = False
if args and args[0] == "--list":
    listing = True
    args = args[1:]
root, modname = args[0], args[1]
for p in (root + "/firmware", root + "/boards", root + "/tests/firmware"):
    sys.path.insert(0, p)

import mptest  # noqa: E402

mod = __import__(modname)
names = sorted(n for n in dir(mod) if n.startswith("test_"))
for name in names:
    reqs = list(mptest.REQS.get(name, ()))
    if listing:
        print("@@TEST " + json.dumps({"name": name, "reqs": reqs}))
        continue
    err = None
    try:
        getattr(mod, name)()
    except Exception as e:  # report every failure, keep running the others
        import io
        buf = io.StringIO()
        sys.print_exception(e, buf)
        err = buf.getvalue()
    print("@@RESULT " + json.dumps({"name": name, "ok": err is None, "err": err, "reqs": reqs}))
