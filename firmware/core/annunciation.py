# Annunciation as data: turns the most urgent sounding alarm priority (and whether audio is
# paused) into buzzer and red/yellow LED states over time. Pure core: no clock, no pins. The app
# calls update() when the alarm picture changes, advance(dt_ms) as time passes, drives the board
# from buzzer_hz / red / yellow, and sleeps ms_to_next_change() until the next edge.
# update() with unchanged arguments, advance() and ms_to_next_change() never allocate.
#
# IEC 60601-1-8 (Table 3/4, auditory; Table 1, visual) ranges and the values chosen here
# (all in ms; docs/alarms.md has the same table):
#   pulse duration td         high 75..200        -> 150     medium/low 125..250 -> 200
#   pulse spacing ts          high x = 50..125    -> 100     medium/low y = 125..250 -> 200
#   high: 3rd-4th and 8th-9th spacing 2x + td     -> 350
#   high: 5th-6th spacing 350..1300               -> 1000
#   interburst interval       high 2500..15000    -> 5000    medium 2500..30000 -> 10000
#                             low > 15000 or none -> 20000
#   pulse frequency           150..1000 Hz with >= 4 harmonics in 300..4000 Hz; a square wave
#                             below 572 Hz has 4 odd harmonics there: high 523, medium 440,
#                             low 392 Hz
#   lights                    high red flashing 1.4..2.8 Hz, duty 20..60 % -> 2 Hz, 50 %
#                             medium yellow flashing 0.4..0.8 Hz, 20..60 % -> 0.5 Hz, 50 %
#                             low yellow (or cyan) constant                 -> yellow steady
# Audio paused silences the buzzer only: the lights keep showing (the standard's AUDIO PAUSED).
#
# MODE_TWO_TONE is the real SynchroMed II's style instead: critical (high) alarms alternate two
# tones, non-critical (medium, low) sound a single tone. The tones and intervals here are ours:
# the pump's manuals name the styles, not timings we could verify.
from core.base import const

MODE_IEC = "iec"
MODE_TWO_TONE = "two_tone"

HZ_HIGH = const(523)
HZ_MEDIUM = const(440)
HZ_LOW = const(392)
HZ_TWO_A = const(660)
HZ_TWO_B = const(440)

# Audio patterns: flat tuples (duration_ms, buzzer_hz, duration_ms, buzzer_hz, ...) repeating.
# Segments alternate sound / silence (two-tone: tone A / tone B / ... then silence); each
# boundary changes the buzzer, so every boundary is an edge. The last segment is the interburst
# interval.
_H = HZ_HIGH
_M = HZ_MEDIUM
_L = HZ_LOW
IEC_HIGH = (150, _H, 100, 0, 150, _H, 100, 0, 150, _H, 350, 0, 150, _H, 100, 0, 150, _H, 1000, 0,
            150, _H, 100, 0, 150, _H, 100, 0, 150, _H, 350, 0, 150, _H, 100, 0, 150, _H, 5000, 0)
IEC_MEDIUM = (200, _M, 200, 0, 200, _M, 200, 0, 200, _M, 10000, 0)
IEC_LOW = (200, _L, 200, 0, 200, _L, 20000, 0)
TWO_TONE_HIGH = (250, HZ_TWO_A, 250, HZ_TWO_B, 250, HZ_TWO_A, 250, HZ_TWO_B, 250, HZ_TWO_A,
                 250, HZ_TWO_B, 5000, 0)
TWO_TONE_MEDIUM = (500, HZ_MEDIUM, 10000, 0)
TWO_TONE_LOW = (500, HZ_MEDIUM, 20000, 0)

# Lights per priority: (red, yellow, on_ms, off_ms); off_ms == 0 means steady.
LIGHTS = (
    (False, False, 0, 0),
    (False, True, 0, 0),
    (False, True, 1000, 1000),
    (True, False, 250, 250),
)

_AUDIO = {MODE_IEC: (None, IEC_LOW, IEC_MEDIUM, IEC_HIGH),
          MODE_TWO_TONE: (None, TWO_TONE_LOW, TWO_TONE_MEDIUM, TWO_TONE_HIGH)}
_RANKS = {None: 0, "low": 1, "medium": 2, "high": 3}
_NAMES = (None, "low", "medium", "high")
_TEST_TAIL_MS = const(1000)  # silence after each burst of the alarm test
_MAX_DT = const(0x3FFFFFFF)


def period_ms(pattern):
    """Length of one repeat of an audio pattern."""
    t = 0
    for i in range(0, len(pattern), 2):  # MicroPython slices take no step
        t += pattern[i]
    return t


def burst_ms(pattern):
    """Sounding part of a pattern: its period without the trailing interburst silence."""
    return period_ms(pattern) - pattern[-2]


class Annunciator:
    def __init__(self, mode=MODE_IEC):
        if mode not in _AUDIO:
            raise ValueError("annunciation mode must be %r or %r, got %r" % (MODE_IEC, MODE_TWO_TONE, mode))
        self.mode = mode
        self._audio = _AUDIO[mode]
        self._periods = tuple(0 if p is None else period_ms(p) for p in self._audio)
        # Alarm test: one burst of each priority, loudest first, then back to normal.
        self._test_ranks = (3, 2, 1)
        self._test_lens = tuple(burst_ms(self._audio[r]) + _TEST_TAIL_MS for r in self._test_ranks)
        self._req_rank = 0       # what update() asked for
        self._req_paused = False
        self._rank = 0           # what is being shown (differs from requested during a test)
        self._paused = False
        self._pat = None         # audio pattern being played
        self._period = 0
        self._ai = 0             # index of the current audio segment in _pat
        self._arem = 0           # ms left in it
        self._lrem = 0           # ms left in the current light phase
        self._lon = False        # light phase: on?
        self._test = -1          # alarm test stage, -1 when no test runs
        self._trem = 0
        self.buzzer_hz = 0
        self.red = False
        self.yellow = False

    # ---- inputs ----

    def update(self, priority, audio_paused):
        """Show `priority` ("high", "medium", "low" or None) with audio paused or not.
        A new priority restarts its pattern from the first pulse; ending a pause restarts the
        burst so it is heard whole. Unchanged arguments change nothing (allocation-free)."""
        if priority not in _RANKS:
            raise ValueError("priority must be 'high', 'medium', 'low' or None, got %r" % (priority,))
        if audio_paused is not True and audio_paused is not False:
            raise ValueError("audio_paused must be True or False, got %r" % (audio_paused,))
        rank = _RANKS[priority]
        if rank == self._req_rank and audio_paused == self._req_paused:
            return
        self._req_rank = rank
        self._req_paused = audio_paused
        if self._test >= 0:
            return  # the test finishes first, then shows what was asked
        if rank != self._rank:
            self._show(rank, audio_paused)
        else:
            self._paused = audio_paused
            if not audio_paused:
                self._restart_audio()
            self._outputs()

    def start_test(self):
        """Run the alarm test: one burst of high, medium and low in turn with their lights,
        sounding even if audio is paused (the point is to hear the buzzer). Afterwards the
        engine returns to what update() last asked for."""
        self._test = 0
        self._trem = self._test_lens[0]
        self._show(self._test_ranks[0], False)

    def stop_test(self):
        if self._test >= 0:
            self._test = -1
            self._show(self._req_rank, self._req_paused)

    @property
    def testing(self):
        return self._test >= 0

    @property
    def priority(self):
        """Priority being shown now (during a test, the stage's)."""
        return _NAMES[self._rank]

    def advance(self, dt_ms):
        """Move time on by dt_ms (int >= 0). Allocation-free."""
        if type(dt_ms) is not int or dt_ms < 0 or dt_ms > _MAX_DT:
            raise ValueError("dt_ms must be an int 0..%d" % _MAX_DT)
        while self._test >= 0 and dt_ms >= self._trem:
            dt_ms -= self._trem
            self._test += 1
            if self._test >= len(self._test_ranks):
                self._test = -1
                self._show(self._req_rank, self._req_paused)
            else:
                self._trem = self._test_lens[self._test]
                self._show(self._test_ranks[self._test], False)
        if self._test >= 0:
            self._trem -= dt_ms
        self._advance_audio(dt_ms)
        self._advance_lights(dt_ms)
        self._outputs()

    def ms_to_next_change(self):
        """ms until the outputs may next change, or None if nothing is scheduled (silent, or
        only steady lights)."""
        m = -1
        if self._pat is not None and not self._paused:
            m = self._arem
        if LIGHTS[self._rank][3] > 0 and (m < 0 or self._lrem < m):
            m = self._lrem
        if self._test >= 0 and (m < 0 or self._trem < m):
            m = self._trem
        return None if m < 0 else m

    # ---- internals ----

    def _show(self, rank, paused):
        self._rank = rank
        self._paused = paused
        self._pat = self._audio[rank]
        self._period = self._periods[rank]
        self._restart_audio()
        lt = LIGHTS[rank]
        self._lon = True
        self._lrem = lt[2]
        self._outputs()

    def _restart_audio(self):
        self._ai = 0
        self._arem = self._pat[0] if self._pat is not None else 0

    def _advance_audio(self, dt):
        pat = self._pat
        if pat is None or self._paused:
            return  # a paused pattern restarts from its first pulse when the pause ends
        if dt >= self._period:
            dt %= self._period  # whole repeats leave the position unchanged
        n = len(pat)
        while dt >= self._arem:
            dt -= self._arem
            self._ai += 2
            if self._ai >= n:
                self._ai = 0
            self._arem = pat[self._ai]
        self._arem -= dt

    def _advance_lights(self, dt):
        lt = LIGHTS[self._rank]
        if lt[3] == 0:
            return
        per = lt[2] + lt[3]
        if dt >= per:
            dt %= per
        while dt >= self._lrem:
            dt -= self._lrem
            self._lon = not self._lon
            self._lrem = lt[2] if self._lon else lt[3]
        self._lrem -= dt

    def _outputs(self):
        if self._pat is None or self._paused:
            self.buzzer_hz = 0
        else:
            self.buzzer_hz = self._pat[self._ai + 1]
        lt = LIGHTS[self._rank]
        on = self._lon or lt[3] == 0
        self.red = lt[0] and on
        self.yellow = lt[1] and on


def _edges(a, duration_ms, out):
    t = 0
    last = (a.buzzer_hz, a.red, a.yellow)
    out.append((0,) + last)
    while True:
        step = a.ms_to_next_change()
        if step is None or t + step > duration_ms:
            return out
        a.advance(step)
        t += step
        now = (a.buzzer_hz, a.red, a.yellow)
        if now != last:
            out.append((t,) + now)
            last = now


def timeline(priority, duration_ms, audio_paused=False, mode=MODE_IEC):
    """Edges of the pattern for `priority` over [0, duration_ms]: a list of
    (t_ms, buzzer_hz, red, yellow), starting with the state at t = 0. Allocates; for tests, the
    bench and docs."""
    if type(duration_ms) is not int or duration_ms < 0 or duration_ms > _MAX_DT:
        raise ValueError("duration_ms must be an int 0..%d, got %r" % (_MAX_DT, duration_ms))
    a = Annunciator(mode)
    a.update(priority, audio_paused)
    return _edges(a, duration_ms, [])


def alarm_test_timeline(mode=MODE_IEC, after=None):
    """Edges of the whole alarm test sequence, up to and including the edge where it ends and
    `after` (the priority the manager asks for) is shown again."""
    a = Annunciator(mode)
    a.update(after, False)
    a.start_test()
    return _edges(a, sum(a._test_lens), [])
