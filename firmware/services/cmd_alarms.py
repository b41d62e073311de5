# The alarm commands: acknowledge, pause the sound, test the buzzer and lights.
from core.alarms import MAX_PAUSE_MS
from core.base import Refusal
from services.protocol import arg


def _span(ms):
    """A duration as a person gave it: 60 min, 90 s, 250 ms."""
    if ms >= 60_000 and ms % 60_000 == 0:
        return "%d min" % (ms // 60_000)
    if ms >= 1000 and ms % 1000 == 0:
        return "%d s" % (ms // 1000)
    return "%d ms" % ms


class AlarmCommands:
    """Mixed into services.commands.Commands: `self.ctx` is its CommandContext."""

    def alarms_ack(self, args):
        c = self.ctx
        code = arg(args, "code", str)
        try:
            done = c.alarms.ack(code, c.pump.up_s)
        except ValueError as e:
            raise Refusal("BAD_ARGS", str(e))
        if "OCCLUSION" in done:
            c.motor.enable(True)  # the driver may move again once the stall is gone
        c.changed()
        return {"acknowledged": done}

    def alarms_pause(self, args):
        c = self.ctx
        ms = arg(args, "ms", int)  # the range is the alarm manager's
        try:
            c.alarms.pause_audio(ms, c.pump.up_s)
        except ValueError:
            # In the units a person paused with (minutes), not the wire's milliseconds.
            raise Refusal("RANGE", "an audio pause must be 1 s to %d min, not %s"
                          % (MAX_PAUSE_MS // 60_000, _span(ms)))
        c.changed(save=False)
        return {"audio_paused_ms": ms}

    def alarms_test(self, args):
        c = self.ctx
        c.annunciator.start_test()
        c.annunciate()  # the first pulse sounds now, not once the reply is built and sent
        c.alarms.raise_alarm("ALARM_TEST", c.pump.up_s)
        c.alarms.clear("ALARM_TEST", c.pump.up_s)
        c.changed(save=False)
        return {"testing": True}
