# The on-device drug library: limits the pump enforces whoever programs it (pure core).
#
# Each entry: allowed concentrations (µg/mL) and (soft, hard) pairs for
#   daily  programmed dose per day, basal + periodic boluses (µg/day)
#   rate   basal rate of any flex step, and the keep-open minimum (µg/day)
#   bolus  clinician single bolus and each periodic bolus (µg)
#   pbolus patient bolus dose (µg)
#   pcount patient boluses per rolling 24 h (count)
# and max24_ug, the rolling 24 h maximum over every source (no override).
# Above hard: refused. Above soft: needs the matching override, which the caller logs.
# docs/programs.md gives the numbers and why they were chosen.
#
# Integrity: a SHA-256 over a canonical text form is checked when a Library is built (at import
# for the shipped one) and by verify() at any time. It detects corruption (flash rot, a bad
# copy, an edit without re-sealing), not an attacker, who could re-seal; authentication of
# library changes belongs to the protocol.
from core.base import const, Refusal

import hashlib
import binascii


_LIMIT_MAX = const(1 << 29)

# Limit key -> (label, value unit, limit unit, override name). Order is the canonical order.
LIMITS = (
    ("daily", "daily dose", " µg", " µg/day", "daily_dose"),
    ("rate", "basal rate", " µg/day", " µg/day", "basal_rate"),
    ("bolus", "bolus dose", " µg", " µg", "bolus_dose"),
    ("pbolus", "patient bolus dose", " µg", " µg", "patient_bolus_dose"),
    ("pcount", "patient boluses per 24 h", "", "", "patient_bolus_count"),
)

# Bolus kinds for check_bolus(): which limit row applies.
_KINDS = {"clinician": "bolus", "periodic": "bolus", "patient": "pbolus"}

ENTRIES = {
    "baclofen": {
        "concs": (50, 500, 1000, 2000),
        "daily": (800, 1200),
        "rate": (1000, 1500),
        "bolus": (100, 200),
        "pbolus": (50, 100),
        "pcount": (6, 12),
        "max24_ug": 1500,
    },
    # Demo entry for moving water on the bench: 1000 µg/mL nominal, so 1 µg is 1 µL (1 mg).
    "water": {
        "concs": (1000,),
        "daily": (10000, 20000),
        "rate": (10000, 20000),
        "bolus": (1000, 2000),
        "pbolus": (200, 500),
        "pcount": (12, 24),
        "max24_ug": 40000,
    },
}

# SHA-256 of canonical(ENTRIES). Change an entry only together with this seal, and review the
# change like code: after an edit the import fails with the computed digest in the message
# (docs/programs.md, "Changing the library").
DIGEST = "d174adfded6f601d0fe5fe3988f7a2d0bd4ac856745ad3027341d7e0d9302545"


def canonical(entries):
    """One text form of a library, independent of dict order: the bytes that are sealed."""
    out = []
    for name in sorted(entries):
        e = entries[name]
        out.append(name)
        out.append(";concs=" + ",".join([str(c) for c in e["concs"]]))
        for row in LIMITS:
            pair = e[row[0]]
            out.append(";%s=%d,%d" % (row[0], pair[0], pair[1]))
        out.append(";max24=%d\n" % e["max24_ug"])
    return "".join(out).encode()


def digest(entries):
    return binascii.hexlify(hashlib.sha256(canonical(entries)).digest()).decode()


def _bad_lib(msg):
    raise Refusal("BAD_LIBRARY", msg)


def _sane(entries):
    # Shape checks, so a library that happens to match its seal is still usable code-wise.
    if not isinstance(entries, dict) or not entries:
        _bad_lib("drug library is empty or not a table")
    for name in entries:
        e = entries[name]
        if not isinstance(name, str) or not isinstance(e, dict):
            _bad_lib("drug library entry %s is malformed" % name)
        for row in LIMITS:
            pair = e.get(row[0])
            if not isinstance(pair, tuple) or len(pair) != 2 \
                    or type(pair[0]) is not int or type(pair[1]) is not int \
                    or not 0 < pair[0] <= pair[1] < _LIMIT_MAX:
                _bad_lib("drug library entry %s: %s limits are not 0 < soft <= hard" % (name, row[0]))
        m = e.get("max24_ug")
        if type(m) is not int or not 0 < m < _LIMIT_MAX:
            _bad_lib("drug library entry %s: max24_ug is not a positive whole number" % name)
        concs = e.get("concs")
        if not isinstance(concs, tuple) or not concs:
            _bad_lib("drug library entry %s has no concentrations" % name)
        for c in concs:
            if type(c) is not int or c <= 0:
                _bad_lib("drug library entry %s: concentration %s is invalid" % (name, c))


def _row(limit):
    for row in LIMITS:
        if row[0] == limit:
            return row
    raise Refusal("BAD_LIBRARY", "no library limit named %s" % limit)


class Library:
    """A verified drug library. Library(entries, digest) raises Refusal("BAD_LIBRARY")
    when the entries do not match the seal, so a corrupt library is never used."""

    def __init__(self, entries, seal):
        self.entries = entries
        self.seal = seal
        self.verify()

    def verify(self):
        """Recompute the checksum; return it, or raise Refusal("BAD_LIBRARY")."""
        _sane(self.entries)
        got = digest(self.entries)
        if got != self.seal:
            _bad_lib("drug library checksum mismatch (computed %s, sealed %s): the library is "
                     "corrupt" % (got, self.seal))
        return got

    def names(self):
        return sorted(self.entries)

    def get(self, name):
        """The entry dict of drug `name`, or Refusal("UNKNOWN_DRUG")."""
        e = self.entries.get(name) if isinstance(name, str) else None
        if e is None:
            raise Refusal("UNKNOWN_DRUG", "drug %s is not in the drug library (known: %s)"
                               % (name if isinstance(name, str) else "?", ", ".join(self.names())))
        return e

    def max24_ug(self, name):
        return self.get(name)["max24_ug"]

    def check(self, drug, limit, value, overrides=(), what=None, soft=None):
        """Check `value` against the (soft, hard) pair `limit` of `drug`.
        Over hard: Refusal("HARD_LIMIT"). Over soft: the override name is returned when it
        is in `overrides`; otherwise Refusal("SOFT_LIMIT"), or, when a list `soft` is
        given, (override, sentence) is appended to it for the caller to settle later.
        Within limits: None."""
        row = _row(limit)
        s, h = self.get(drug)[limit]
        label = what or row[1]
        if value > h:
            raise Refusal("HARD_LIMIT", "%s %d%s exceeds the hard limit of %d%s for %s"
                               % (label, value, row[2], h, row[3], drug))
        if value > s:
            name = row[4]
            msg = ('%s %d%s exceeds the soft limit of %d%s for %s; it needs the override "%s"'
                   % (label, value, row[2], s, row[3], drug, name))
            if soft is not None:
                soft.append((name, msg))
                return None
            if name in overrides:
                return name
            raise Refusal("SOFT_LIMIT", msg)
        return None

    def check_bolus(self, drug, dose_ug, kind, overrides=()):
        """Check a single bolus dose. kind: "clinician" | "periodic" | "patient".
        Returns the tuple of overrides used (empty or one name), or raises Refusal
        (BAD_BOLUS, UNKNOWN_DRUG, HARD_LIMIT, SOFT_LIMIT). The rolling 24 h maximum is checked
        separately (core.rolling), because it depends on what was delivered."""
        limit = _KINDS.get(kind) if isinstance(kind, str) else None
        if limit is None:
            raise Refusal("BAD_BOLUS", "bolus kind must be clinician, periodic or patient")
        if type(dose_ug) is not int or dose_ug < 1:
            raise Refusal("BAD_BOLUS", "bolus dose_ug must be a whole number of µg >= 1")
        used = self.check(drug, limit, dose_ug, overrides, "%s bolus dose" % kind)
        return (used,) if used else ()

    def to_list(self):
        """The library as plain JSON-able rows (for `pumpctl drugs`)."""
        out = []
        for name in self.names():
            e = self.entries[name]
            row = {"name": name, "concentrations_ug_per_ml": list(e["concs"]),
                   "max24_ug": e["max24_ug"]}
            for r in LIMITS:
                row[r[0]] = {"soft": e[r[0]][0], "hard": e[r[0]][1], "override": r[4]}
            out.append(row)
        return out


# The shipped library, verified at import: a corrupt one raises here, before any use.
LIBRARY = Library(ENTRIES, DIGEST)
verify = LIBRARY.verify
get = LIBRARY.get
names = LIBRARY.names
check = LIBRARY.check
check_bolus = LIBRARY.check_bolus
max24_ug = LIBRARY.max24_ug
to_list = LIBRARY.to_list
