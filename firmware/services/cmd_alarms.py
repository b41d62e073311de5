# The alarm commands: acknowledge, pause the sound, test the buzzer and lights.
from core.base import Refusal
from services.protocol import arg


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
        except ValueError as e:
            raise Refusal("RANGE", str(e))
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
