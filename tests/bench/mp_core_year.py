# `make bench` helper, run on MicroPython: the 365-day core run of tests/firmware/mp_test_therapy.py
# (flex profile, periodic, clinician and patient boluses; every tick heap-locked and checked).
import sys
import time

root = sys.argv[1]
for p in (root + "/firmware", root + "/tests/firmware"):
    sys.path.insert(0, p)
import mp_test_therapy as t  # noqa: E402

t0 = time.ticks_ms()
t.test_year_of_flex_periodic_clinician_and_patient_boluses()
ms = time.ticks_diff(time.ticks_ms(), t0)
for k in ("ticks", "worst_steps", "max_int", "patient_boluses"):
    print("RESULT %s=%s" % (k, t.LAST[k]))
print("RESULT run_ms=%d" % ms)
