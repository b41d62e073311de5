# Who may run what: the roles, THE role table and the two questions asked of it (protocol v1;
# threat model in docs/security.md). services/auth.py checks a request's credentials and then
# asks role_may(); the table is here, on its own, so a reviewer reads the whole policy at once.

ROLE_ANYONE = "anyone"
ROLE_PATIENT = "patient"
ROLE_CLINICIAN = "clinician"
ROLES = (ROLE_CLINICIAN, ROLE_PATIENT)  # roles that hold a key
_ROLE_RANK = {ROLE_ANYONE: 0, ROLE_PATIENT: 1, ROLE_CLINICIAN: 2}

# THE role table: command name -> lowest role allowed to run it. Roles are ordered
# anyone < patient < clinician, so a role may run everything at or below its rank.
# Any command NOT listed needs the clinician (default deny: a command added later is
# clinician-only until someone decides otherwise here).
# Rationale per entry:
#   hello, identify  - who the device is: needed before keys are even chosen
#   status, alarms   - read-only; anyone near the pump should be able to see an alarm
#   drugs            - the built-in drug library: static, public reference data
#   patient_bolus    - the patient's own bolus; the device still applies the clinician's
#                      dose, lockout interval and daily count whoever asks
#   alarms_ack/pause - silencing is the patient's right at home (myPTM); it does not clear
#                      the cause, and latching/timed rules stay on the device
#   log, program_show - reading history and the running program: the patient's own
#                      therapy data, so not for anyone
# Everything that changes a program, a limit, the reservoir, the clock, calibration, keys, or
# that moves the motor (program_set, program_check, bolus, prime, bridge, stop, resume,
# refill, time_set, provision, alarms_test, ...) is clinician-only by not being listed.
COMMAND_MIN_ROLE = {
    "hello": ROLE_ANYONE,
    "identify": ROLE_ANYONE,
    "status": ROLE_ANYONE,
    "alarms": ROLE_ANYONE,
    "drugs": ROLE_ANYONE,
    "patient_bolus": ROLE_PATIENT,
    "alarms_ack": ROLE_PATIENT,
    "alarms_pause": ROLE_PATIENT,
    "log": ROLE_PATIENT,
    "program_show": ROLE_PATIENT,
    "history": ROLE_PATIENT,
    "patient_usage": ROLE_PATIENT,
}


def min_role(cmd):
    """Lowest role that may run cmd: "anyone", "patient" or "clinician"."""
    if not isinstance(cmd, str):
        return ROLE_CLINICIAN
    return COMMAND_MIN_ROLE.get(cmd, ROLE_CLINICIAN)


def role_may(role, cmd):
    """True if role ("anyone", "patient", "clinician") may run cmd."""
    if not isinstance(role, str):
        return False
    rank = _ROLE_RANK.get(role)
    if rank is None:
        return False
    return rank >= _ROLE_RANK[min_role(cmd)]


# What each command does, in words, for a refusal a person reads ("the patient key may not
# check a program"): the command's wire name is for scripts.
_WORDS = {
    "program_check": "check a program", "program_set": "change the program", "stop": "stop the pump",
    "resume": "resume therapy", "bolus": "give a clinician bolus", "prime": "prime the catheter",
    "bridge": "give a bridge bolus", "refill": "record a refill", "settings": "change the settings",
    "time_set": "set the clock", "calibrate": "change the calibration", "run_volume": "run a calibration volume",
    "alarms_test": "test the alarms", "provision": "change the keys", "patient_bolus": "ask for a patient bolus",
    "alarms_ack": "acknowledge alarms", "alarms_pause": "pause the alarm sound", "log": "read the event log",
    "program_show": "read the program", "history": "read the history", "patient_usage": "read the bolus usage",
}


def what(cmd):
    """A refused command in words: "change the program"; an unknown one by its name."""
    if isinstance(cmd, str):
        w = _WORDS.get(cmd)
        if w is not None:
            return w
        return "run %r" % (cmd[:24],)
    return "run that command"
