# The sealed drug library on the real MicroPython interpreter (core/druglib.py).
from mptest import req, eq, raises
from core import druglib
from core.druglib import Library, ENTRIES, DIGEST
from core.base import Refusal


def clone(entries):
    out = {}
    for name in entries:
        e = {}
        for k in entries[name]:
            e[k] = entries[name][k]
        out[name] = e
    return out


def test_shipped_library_verifies():
    eq(druglib.verify(), DIGEST)
    eq(druglib.digest(ENTRIES), DIGEST)
    eq(druglib.names(), ["baclofen", "water"])
    b = druglib.get("baclofen")
    eq(b["concs"], (50, 500, 1000, 2000))
    eq(b["daily"], (800, 1200))
    eq(b["max24_ug"], 1500)
    eq(druglib.max24_ug("water"), 40000)


def test_baclofen_limits_bracket_clinical_numbers():
    # DOMAIN.md: spinal maintenance up to ~800 µg/day, 1199 µg/day the highest reported;
    # screening bolus 50-100 µg.
    b = druglib.get("baclofen")
    eq(b["daily"][0] >= 800, True)
    eq(b["daily"][1] >= 1199, True)
    eq(b["bolus"][0] >= 100, True)
    eq(b["max24_ug"] >= b["daily"][1], True)


def test_water_moves_within_minutes():
    # At the hard rate limit of the water entry (1 µg = 1 µL) at least 10 µL flow per minute.
    w = druglib.get("water")
    eq(w["rate"][1] // 1440 >= 10, True)


def test_canonical_form_is_order_independent():
    a = clone(ENTRIES)
    b = {}
    for name in reversed(sorted(a)):
        b[name] = a[name]
    eq(druglib.canonical(a), druglib.canonical(b))


# Detection only; SR-033 (motor stays stopped on a bad library) belongs to the boot self-test.
def test_tampered_entry_detected():
    for field, value in (("daily", (800, 12000)), ("concs", (50, 500, 1000, 2000, 4000)),
                         ("max24_ug", 15000), ("pcount", (6, 13))):
        t = clone(ENTRIES)
        t["baclofen"][field] = value
        e = raises(Refusal, Library, t, DIGEST)
        eq(e.code, "BAD_LIBRARY")
        eq("checksum mismatch" in e.msg, True, e.msg)
    # A library that was fine at load and is corrupted afterwards fails verify().
    t = clone(ENTRIES)
    lib = Library(t, DIGEST)
    eq(lib.verify(), DIGEST)
    t["water"]["rate"] = (10000, 2000000)
    e = raises(Refusal, lib.verify)
    eq(e.code, "BAD_LIBRARY")
    # Added or removed entries are detected too.
    t = clone(ENTRIES)
    t["morphine"] = t["baclofen"]
    eq(raises(Refusal, Library, t, DIGEST).code, "BAD_LIBRARY")
    t = clone(ENTRIES)
    del t["water"]
    eq(raises(Refusal, Library, t, DIGEST).code, "BAD_LIBRARY")


def test_malformed_library_refused():
    t = clone(ENTRIES)
    t["water"]["bolus"] = (3000, 2000)   # soft above hard
    e = raises(Refusal, Library, t, druglib.digest(ENTRIES))
    eq(e.code, "BAD_LIBRARY")
    eq(e.msg, "drug library entry water: bolus limits are not 0 < soft <= hard")
    eq(raises(Refusal, Library, {}, DIGEST).code, "BAD_LIBRARY")


def test_resealed_library_is_accepted():
    # Changing the library is a deliberate act: new entries with their new seal.
    t = clone(ENTRIES)
    t["water"]["rate"] = (10000, 30000)
    lib = Library(t, druglib.digest(t))
    eq(lib.get("water")["rate"], (10000, 30000))


def test_unknown_drug():
    e = raises(Refusal, druglib.get, "morphine")
    eq(e.code, "UNKNOWN_DRUG")
    eq(e.msg, "drug morphine is not in the drug library (known: baclofen, water)")
    eq(raises(Refusal, druglib.get, None).code, "UNKNOWN_DRUG")


@req("SR-001")
def test_check_bolus_hard():
    e = raises(Refusal, druglib.check_bolus, "baclofen", 201, "clinician")
    eq(e.code, "HARD_LIMIT")
    eq(e.msg, "clinician bolus dose 201 µg exceeds the hard limit of 200 µg for baclofen")
    e = raises(Refusal, druglib.check_bolus, "baclofen", 201, "clinician", ["bolus_dose"])
    eq(e.code, "HARD_LIMIT")
    e = raises(Refusal, druglib.check_bolus, "baclofen", 101, "patient")
    eq(e.msg, "patient bolus dose 101 µg exceeds the hard limit of 100 µg for baclofen")
    e = raises(Refusal, druglib.check_bolus, "water", 2001, "periodic")
    eq(e.msg, "periodic bolus dose 2001 µg exceeds the hard limit of 2000 µg for water")


@req("SR-002")
def test_check_bolus_soft():
    eq(druglib.check_bolus("baclofen", 100, "clinician"), ())
    e = raises(Refusal, druglib.check_bolus, "baclofen", 150, "clinician")
    eq(e.code, "SOFT_LIMIT")
    eq(e.msg, 'clinician bolus dose 150 µg exceeds the soft limit of 100 µg for baclofen; it '
              'needs the override "bolus_dose"')
    eq(druglib.check_bolus("baclofen", 150, "clinician", ["bolus_dose"]), ("bolus_dose",))
    e = raises(Refusal, druglib.check_bolus, "baclofen", 150, "clinician",
               ["patient_bolus_dose"])
    eq(e.code, "SOFT_LIMIT")
    eq(druglib.check_bolus("baclofen", 60, "patient", ["patient_bolus_dose"]),
       ("patient_bolus_dose",))


def test_check_bolus_bad_args():
    for dose in (0, -5, 1.5, "50", True, None):
        e = raises(Refusal, druglib.check_bolus, "baclofen", dose, "clinician")
        eq(e.code, "BAD_BOLUS")
        eq(e.msg, "bolus dose_ug must be a whole number of µg >= 1")
    e = raises(Refusal, druglib.check_bolus, "baclofen", 50, "priming")
    eq(e.code, "BAD_BOLUS")
    eq(e.msg, "bolus kind must be clinician, periodic or patient")
    eq(raises(Refusal, druglib.check_bolus, "x", 50, "clinician").code, "UNKNOWN_DRUG")


def test_to_list():
    rows = druglib.to_list()
    eq([r["name"] for r in rows], ["baclofen", "water"])
    b = rows[0]
    eq(b["concentrations_ug_per_ml"], [50, 500, 1000, 2000])
    eq(b["daily"], {"soft": 800, "hard": 1200, "override": "daily_dose"})
    eq(b["max24_ug"], 1500)
    import json
    eq(json.loads(json.dumps(rows)), rows)
