# Program model and validation on the real MicroPython interpreter (core/program_model.py,
# core/program.py).
import json
from mptest import req, eq, raises
from core import druglib
from core.base import Refusal
from core.program import parse, continuous, continuous_dict, stopped

# The profile of issue 3 / SR-025 at 500 µg/mL.
EVENING = {
    "drug": "baclofen", "concentration_ug_per_ml": 500, "mode": "flex",
    "steps": [{"start": "00:00", "rate_ug_per_day": 100},
              {"start": "18:00", "rate_ug_per_day": 400},
              {"start": "22:00", "rate_ug_per_day": 200}],
    "periodic_boluses": [{"time": "08:00", "dose_ug": 25, "duration_min": 10}],
}


def copy(d):
    return json.loads(json.dumps(d))


def refused(d, code, msg):
    """parse(d) must raise `code` with exactly the sentence `msg` and leave d unchanged."""
    before = json.dumps(d)
    e = raises(Refusal, parse, d, druglib)
    eq(e.code, code, msg)
    eq(e.msg, msg)
    eq(str(e), msg)
    eq(json.dumps(d), before, "input changed")
    return e


def with_(base, **kw):
    d = copy(base)
    for k in kw:
        if kw[k] is None:
            del d[k]
        else:
            d[k] = kw[k]
    return d


def test_evening_profile_model():
    p = parse(copy(EVENING), druglib)
    eq(p.drug, "baclofen")
    eq(p.conc, 500)
    eq(p.mode, "flex")
    eq(p.steps, ((0, 100), (1080, 400), (1320, 200)))
    eq(p.periodic, ((480, 25, 10),))
    eq(p.min_rate, 0)
    eq(p.patient, None)
    eq(p.overrides_used, ())


@req("SR-025")
def test_evening_profile_rates_and_changes():
    p = parse(copy(EVENING), druglib)
    for m, r in ((0, 100), (479, 100), (480, 100), (1079, 100), (1080, 400), (1319, 400),
                 (1320, 200), (1439, 200)):
        eq(p.rate_at(m), r, "at minute %d" % m)
    # Scheduling: step starts and the periodic bolus's start and end.
    for m, n in ((0, 480), (479, 480), (480, 490), (489, 490), (490, 1080), (1080, 1320),
                 (1319, 1320), (1320, 1440), (1439, 1440)):
        eq(p.next_change_min(m), n, "after minute %d" % m)
    eq(p.periodic_at(479), None)
    eq(p.periodic_at(480), (480, 25, 10))
    eq(p.periodic_at(489), (480, 25, 10))
    eq(p.periodic_at(490), None)


@req("SR-025")
def test_evening_profile_daily_total():
    p = parse(copy(EVENING), druglib)
    # 100*18/24 + 400*4/24 + 200*2/24 + 25 = 183.33 µg: exact x1440, rounded up in µg.
    eq(p.daily_total_x1440(), 100 * 1080 + 400 * 240 + 200 * 120 + 25 * 1440)
    eq(p.daily_total_x1440(), 264000)
    eq(p.daily_total_ug(), 184)
    eq(p.worst_case_daily_ug(), 184)
    # Per-hour view: the evening rise, and the bolus hour.
    eq(p.ng_per_hour_at(600), 100 * 1000 // 24)
    eq(p.ng_per_hour_at(1200), 400 * 1000 // 24)
    eq(p.ng_per_hour_at(485), 100 * 1000 // 24 + 25 * 6000)
    req_ = p.ug_per_hour_at(1200)
    eq(int(req_ * 1000 + 0.5), 16666)


def test_round_trip():
    for d in (EVENING, continuous_dict("baclofen", 2000, 500),
              {"drug": "water", "concentration_ug_per_ml": 1000, "mode": "stopped"},
              with_(EVENING, min_rate_ug_per_day=150,
                    patient_bolus={"dose_ug": 20, "duration_min": 5, "max_per_24h": 4,
                                   "lockout_min": 180})):
        p = parse(copy(d), druglib)
        q = parse(p.to_dict(), druglib)
        eq(q == p, True)
        eq(q.to_dict(), p.to_dict())
        eq(json.loads(json.dumps(p.to_dict())), p.to_dict())


def test_continuous_helpers():
    p = continuous("baclofen", 2000, 500, druglib)
    eq(p.steps, ((0, 500),))
    eq(p.rate_at(0), 500)
    eq(p.rate_at(1439), 500)
    eq(p.next_change_min(0), 1440)
    eq(p.next_change_min(700), 1440)
    eq(p.daily_total_ug(), 500)
    s = stopped("baclofen", 2000, druglib)
    eq(s.rate_at(600), 0)
    eq(s.daily_total_ug(), 0)


def test_min_rate_is_a_floor():
    d = with_(EVENING, min_rate_ug_per_day=150)
    p = parse(d, druglib)
    eq(p.rate_at(0), 150)
    eq(p.rate_at(1100), 400)
    eq(p.rate_at(1400), 200)
    eq(p.daily_total_x1440(), 150 * 1080 + 400 * 240 + 200 * 120 + 25 * 1440)


def test_periodic_over_midnight():
    d = with_(EVENING, periodic_boluses=[{"time": "08:00", "dose_ug": 25, "duration_min": 10},
                                         {"time": "23:55", "dose_ug": 10, "duration_min": 10}])
    p = parse(d, druglib)
    eq(p.periodic_at(1437), (1435, 10, 10))
    eq(p.periodic_at(3), (1435, 10, 10))
    eq(p.periodic_at(5), None)
    eq(p.next_change_min(1436), 1440)   # the 00:00 step comes first
    eq(p.next_change_min(1434), 1435)
    eq(p.next_change_min(0), 5)
    eq(p.daily_total_x1440(), 264000 + 10 * 1440)


def test_48_steps_accepted():
    steps = [{"start": "%02d:%02d" % (i // 2, 30 * (i % 2)), "rate_ug_per_day": 100 + i}
             for i in range(48)]
    p = parse(with_(EVENING, steps=steps), druglib)
    eq(len(p.steps), 48)
    eq(p.rate_at(1439), 147)
    eq(p.next_change_min(1400), 1410)


@req("SR-001")
def test_hard_limits_refused():
    refused(continuous_dict("baclofen", 2000, 1500), "HARD_LIMIT",
            "daily dose 1500 µg exceeds the hard limit of 1200 µg/day for baclofen")
    steps = copy(EVENING["steps"])
    steps[1]["rate_ug_per_day"] = 1600
    refused(with_(EVENING, steps=steps), "HARD_LIMIT",
            "steps[1].rate_ug_per_day 1600 µg/day exceeds the hard limit of 1500 µg/day for "
            "baclofen")
    refused(with_(EVENING, periodic_boluses=[{"time": "08:00", "dose_ug": 201,
                                              "duration_min": 10}]), "HARD_LIMIT",
            "periodic_boluses[0].dose_ug 201 µg exceeds the hard limit of 200 µg for baclofen")
    refused(with_(EVENING, min_rate_ug_per_day=1501), "HARD_LIMIT",
            "min_rate_ug_per_day 1501 µg/day exceeds the hard limit of 1500 µg/day for baclofen")
    pb = {"dose_ug": 101, "duration_min": 5, "max_per_24h": 2, "lockout_min": 60}
    refused(with_(EVENING, patient_bolus=pb), "HARD_LIMIT",
            "patient_bolus.dose_ug 101 µg exceeds the hard limit of 100 µg for baclofen")
    pb = {"dose_ug": 10, "duration_min": 5, "max_per_24h": 13, "lockout_min": 60}
    refused(with_(EVENING, patient_bolus=pb), "HARD_LIMIT",
            "patient_bolus.max_per_24h 13 exceeds the hard limit of 12 for baclofen")
    refused(continuous_dict("water", 1000, 20001), "HARD_LIMIT",
            "rate_ug_per_day 20001 µg/day exceeds the hard limit of 20000 µg/day for water")


@req("SR-001", "SR-002")
def test_override_never_passes_hard_limit():
    d = continuous_dict("baclofen", 2000, 1300)
    d["overrides"] = list(("daily_dose", "basal_rate"))
    refused(d, "HARD_LIMIT", "daily dose 1300 µg exceeds the hard limit of 1200 µg/day for "
                             "baclofen")


@req("SR-003")
def test_worst_case_over_24h_maximum_refused():
    # 900 µg/day (soft, overridden) + 12 patient boluses of 50 µg = 1500: exactly the maximum.
    d = continuous_dict("baclofen", 2000, 900)
    d["overrides"] = ["daily_dose", "patient_bolus_count"]
    d["patient_bolus"] = {"dose_ug": 50, "duration_min": 5, "max_per_24h": 12, "lockout_min": 60}
    p = parse(copy(d), druglib)
    eq(p.worst_case_daily_ug(), 1500)
    d["rate_ug_per_day"] = 901
    refused(d, "HARD_LIMIT", "worst-case daily dose 1501 µg (program 901 µg + every patient "
                             "bolus) exceeds the 24 h maximum of 1500 µg for baclofen")


@req("SR-002")
def test_soft_limit_needs_override():
    d = continuous_dict("baclofen", 2000, 900)
    refused(d, "SOFT_LIMIT", 'daily dose 900 µg exceeds the soft limit of 800 µg/day for '
                             'baclofen; it needs the override "daily_dose"')
    d["overrides"] = ["bolus_dose"]          # the wrong override does not help
    refused(d, "SOFT_LIMIT", 'daily dose 900 µg exceeds the soft limit of 800 µg/day for '
                             'baclofen; it needs the override "daily_dose"')
    d["overrides"] = ["daily_dose"]
    p = parse(d, druglib)
    eq(p.overrides_used, ("daily_dose",))
    eq(p.to_dict()["overrides"], ["daily_dose"])
    # A rate over its soft limit needs its own override as well as the daily one.
    d = continuous_dict("baclofen", 2000, 1100)
    d["overrides"] = ["daily_dose"]
    refused(d, "SOFT_LIMIT", 'rate_ug_per_day 1100 µg/day exceeds the soft limit of 1000 µg/day '
                             'for baclofen; it needs the override "basal_rate"')
    d["overrides"] = ["basal_rate", "daily_dose"]
    eq(parse(d, druglib).overrides_used, ("daily_dose", "basal_rate"))
    # Unneeded overrides are accepted but not reported as used.
    d = continuous_dict("baclofen", 2000, 500)
    d["overrides"] = ["daily_dose"]
    eq(parse(d, druglib).overrides_used, ())


@req("SR-002")
def test_soft_limits_of_boluses():
    d = with_(EVENING, periodic_boluses=[{"time": "08:00", "dose_ug": 150, "duration_min": 10}])
    refused(d, "SOFT_LIMIT", 'periodic_boluses[0].dose_ug 150 µg exceeds the soft limit of 100 '
                             'µg for baclofen; it needs the override "bolus_dose"')
    d["overrides"] = ["bolus_dose"]
    eq(parse(d, druglib).overrides_used, ("bolus_dose",))
    d = with_(EVENING, patient_bolus={"dose_ug": 60, "duration_min": 5, "max_per_24h": 7,
                                      "lockout_min": 60})
    refused(d, "SOFT_LIMIT", 'patient_bolus.dose_ug 60 µg exceeds the soft limit of 50 µg for '
                             'baclofen; it needs the override "patient_bolus_dose"')
    d["overrides"] = ["patient_bolus_dose"]
    refused(d, "SOFT_LIMIT", 'patient_bolus.max_per_24h 7 exceeds the soft limit of 6 for '
                             'baclofen; it needs the override "patient_bolus_count"')
    d["overrides"] = ["patient_bolus_count", "patient_bolus_dose"]
    eq(parse(d, druglib).overrides_used, ("patient_bolus_dose", "patient_bolus_count"))


@req("SR-017")
def test_drug_and_concentration():
    refused(with_(EVENING, drug="morphine"), "UNKNOWN_DRUG",
            "drug morphine is not in the drug library (known: baclofen, water)")
    refused(with_(EVENING, drug=7), "BAD_PROGRAM", "drug must be a name, got 7")
    refused(with_(EVENING, concentration_ug_per_ml=750), "BAD_CONCENTRATION",
            "concentration_ug_per_ml 750 is not allowed for baclofen (allowed: 50, 500, 1000, "
            "2000 µg/mL)")
    refused(with_(EVENING, concentration_ug_per_ml=500.0), "BAD_CONCENTRATION",
            "concentration_ug_per_ml 500.0 is not allowed for baclofen (allowed: 50, 500, 1000, "
            "2000 µg/mL)")
    refused(with_(EVENING, concentration_ug_per_ml=None), "BAD_PROGRAM",
            "the program is missing concentration_ug_per_ml")


@req("SR-023")
def test_structure_errors():
    refused([1], "BAD_PROGRAM", "the program must be a table/object, got a list")
    refused(with_(EVENING, colour="red"), "BAD_PROGRAM", 'unknown field "colour" in the program')
    refused(with_(EVENING, mode="turbo"), "BAD_PROGRAM",
            'mode must be one of continuous, flex, stopped, got "turbo"')
    refused(with_(EVENING, mode=None), "BAD_PROGRAM", "the program is missing mode")
    refused(with_(EVENING, drug=None), "BAD_PROGRAM", "the program is missing drug")
    refused(with_(EVENING, steps=None), "BAD_PROGRAM", "a flex program is missing steps")
    refused(with_(EVENING, rate_ug_per_day=100), "BAD_PROGRAM",
            "a flex program takes steps, not rate_ug_per_day (use mode continuous)")
    c = continuous_dict("baclofen", 2000, 500)
    refused(with_(c, steps=EVENING["steps"]), "BAD_PROGRAM",
            "a continuous program takes rate_ug_per_day, not steps (use mode flex)")
    refused(with_(c, rate_ug_per_day=None), "BAD_PROGRAM",
            "a continuous program is missing rate_ug_per_day")
    refused(with_(c, rate_ug_per_day=0), "BAD_PROGRAM",
            "rate_ug_per_day 0 is out of range 1..536870912")
    refused(with_(c, rate_ug_per_day=500.5), "BAD_PROGRAM",
            "rate_ug_per_day must be a whole number, got 500.5")
    refused(with_(c, rate_ug_per_day=True), "BAD_PROGRAM",
            "rate_ug_per_day must be a whole number, got true")
    refused(with_(c, rate_ug_per_day="500"), "BAD_PROGRAM",
            'rate_ug_per_day must be a whole number, got "500"')
    refused(with_(c, rate_ug_per_day=2 ** 40), "BAD_PROGRAM",
            "rate_ug_per_day 1099511627776 is out of range 1..536870912")
    refused(with_(c, min_rate_ug_per_day=-1), "BAD_PROGRAM",
            "min_rate_ug_per_day -1 is out of range 0..536870912")
    s = {"drug": "baclofen", "concentration_ug_per_ml": 2000, "mode": "stopped"}
    refused(with_(s, rate_ug_per_day=5), "BAD_PROGRAM", "a stopped program takes no rate_ug_per_day")
    refused(with_(s, patient_bolus={}), "BAD_PROGRAM", "a stopped program takes no patient_bolus")


@req("SR-023")
def test_override_list_errors():
    c = continuous_dict("baclofen", 2000, 500)
    refused(with_(c, overrides="daily_dose"), "BAD_PROGRAM",
            'overrides must be a list of names, got "daily_dose"')
    refused(with_(c, overrides=["everything"]), "BAD_PROGRAM",
            'overrides: "everything" is not a soft-limit override (known: daily_dose, basal_rate, '
            'bolus_dose, patient_bolus_dose, patient_bolus_count)')
    refused(with_(c, overrides=["daily_dose", "daily_dose"]), "BAD_PROGRAM",
            "overrides: daily_dose is listed twice")


@req("SR-023")
def test_step_errors():
    def st(*pairs):
        return with_(EVENING, steps=[{"start": s, "rate_ug_per_day": r} for s, r in pairs])
    refused(st(("00:30", 100)), "BAD_PROGRAM",
            "steps[0].start must be 00:00 so the profile covers the whole day, got 00:30")
    refused(st(("00:00", 100), ("18:00", 400), ("18:00", 200)), "BAD_PROGRAM",
            "steps[2].start 18:00 must be later than the previous step (18:00)")
    refused(st(("00:00", 100), ("18:00", 400), ("12:00", 200)), "BAD_PROGRAM",
            "steps[2].start 12:00 must be later than the previous step (18:00)")
    refused(st(("00:00", 100), ("24:00", 400)), "BAD_PROGRAM",
            "steps[1].start 24:00 is not a time of day (00:00..23:59)")
    refused(st(("00:00", 100), ("7:00", 400)), "BAD_PROGRAM",
            'steps[1].start must be a time "HH:MM", got "7:00"')
    refused(st(("00:00", 100), (420, 400)), "BAD_PROGRAM",
            'steps[1].start must be a time "HH:MM", got 420')
    refused(st(("00:00", -5)), "BAD_PROGRAM",
            "steps[0].rate_ug_per_day -5 is out of range 0..536870912")
    refused(with_(EVENING, steps=[]), "BAD_PROGRAM",
            "steps must be a non-empty list of {start, rate_ug_per_day}")
    refused(with_(EVENING, steps=[{"start": "00:00"}]), "BAD_PROGRAM",
            "steps[0] is missing rate_ug_per_day")
    refused(with_(EVENING, steps=[{"start": "00:00", "rate_ug_per_day": 5, "x": 1}]),
            "BAD_PROGRAM", 'unknown field "x" in steps[0]')
    refused(with_(EVENING, steps=[5]), "BAD_PROGRAM", "steps[0] must be a table/object, got 5")
    many = [{"start": "%02d:%02d" % (i // 60, i % 60), "rate_ug_per_day": 100} for i in range(49)]
    refused(with_(EVENING, steps=many), "BAD_PROGRAM",
            "steps has 49 entries; at most 48 are allowed")


@req("SR-023")
def test_periodic_errors():
    def pb(*rows):
        return with_(EVENING, periodic_boluses=[{"time": t, "dose_ug": d, "duration_min": m}
                                                for t, d, m in rows])
    refused(pb(("08:00", 25, 10), ("08:05", 25, 10)), "BAD_PROGRAM",
            "periodic_boluses[1] at 08:05 starts before the previous periodic bolus (08:00, "
            "10 min) ends")
    refused(pb(("08:00", 25, 10), ("07:00", 25, 10)), "BAD_PROGRAM",
            "periodic_boluses[1].time 07:00 must be later than the previous periodic bolus "
            "(08:00)")
    refused(pb(("00:05", 25, 10), ("23:58", 25, 10)), "BAD_PROGRAM",
            "periodic_boluses[1] at 23:58 runs past midnight into the bolus at 00:05")
    refused(pb(("08:00", 0, 10)), "BAD_PROGRAM",
            "periodic_boluses[0].dose_ug 0 is out of range 1..536870912")
    refused(pb(("08:00", 25, 0)), "BAD_PROGRAM",
            "periodic_boluses[0].duration_min 0 is out of range 1..240")
    refused(pb(("08:00", 25, 241)), "BAD_PROGRAM",
            "periodic_boluses[0].duration_min 241 is out of range 1..240")
    refused(with_(EVENING, periodic_boluses={"time": "08:00"}), "BAD_PROGRAM",
            "periodic_boluses must be a list of {time, dose_ug, duration_min}")
    refused(with_(EVENING, periodic_boluses=[{"time": "08:00", "dose_ug": 5}]), "BAD_PROGRAM",
            "periodic_boluses[0] is missing duration_min")


@req("SR-023")
def test_patient_errors():
    good = {"dose_ug": 20, "duration_min": 5, "max_per_24h": 4, "lockout_min": 180}

    def pt(**kw):
        d = copy(good)
        for k in kw:
            if kw[k] is None:
                del d[k]
            else:
                d[k] = kw[k]
        return with_(EVENING, patient_bolus=d)
    eq(parse(pt(), druglib).patient, (20, 5, 4, 180))
    refused(pt(lockout_min=4), "BAD_PROGRAM",
            "patient_bolus.lockout_min 4 is shorter than its duration_min 5: boluses would overlap")
    refused(pt(max_per_24h=0), "BAD_PROGRAM",
            "patient_bolus.max_per_24h 0 is out of range 1..96")
    refused(pt(lockout_min=1441), "BAD_PROGRAM",
            "patient_bolus.lockout_min 1441 is out of range 1..1440")
    refused(pt(dose_ug=None), "BAD_PROGRAM", "patient_bolus is missing dose_ug")
    refused(pt(extra=1), "BAD_PROGRAM", 'unknown field "extra" in patient_bolus')
    refused(with_(EVENING, patient_bolus="yes"), "BAD_PROGRAM",
            'patient_bolus must be a table/object, got "yes"')
