# The reading commands: identity, status, program, drug library, alarms, log and history.
# They change nothing but the MEMORY_ERROR alarm a damaged log record raises.
from version import VERSION, BANNER
from core.base import Refusal
from core.druglib import LIBRARY
from services.protocol import arg


# A log page stops at this many stored bytes: the reply (and the copies made to encode, frame
# and cache it) stays near 1.2 KB however large the records are. On the rp2 port, after a
# watchdog reset, the largest free block was found to be under 1.7 KB (a 1.2 KB-page reply
# failed to encode): a download never needs a big contiguous block. The host pages on.
_LOG_PAGE_BYTES = 700
# Each MemoryError met answering a read halves the page (short_of_memory), down to this: a
# fragmented rp2 heap after a RUN-pin reset was seen with 65 KB free and no block for a
# 10-record page, where 5 records went through. The host pages on, in smaller pages.
_LOG_PAGE_MIN = 120
_RINGS = ("events", "refusals")  # the event log and the refusals' ring (services/refusals.py)


class ReadCommands:
    """Mixed into services.commands.Commands: `self.ctx` is its CommandContext."""

    log_page_bytes = _LOG_PAGE_BYTES  # halved by short_of_memory(), until the next boot

    def short_of_memory(self):
        """The protocol met a MemoryError answering a read: the next log page is smaller."""
        b = self.log_page_bytes // 2
        self.log_page_bytes = b if b > _LOG_PAGE_MIN else _LOG_PAGE_MIN

    def identify(self, args):
        c = self.ctx
        d = {"device": "bench-itb-pump", "device_id": c.device_id, "board": c.board_name,
             "firmware_version": VERSION, "protocol": 1, "banner": BANNER}
        if c.stores.auth is not None:
            d["auth"] = c.stores.auth.info(c.clock.ticks())
            if c.refusals is not None:
                d["auth"]["refusals"] = c.refusals.info()  # counted ones survive in the refusals ring
        return d

    def status(self, args):
        c = self.ctx
        st = c.pump.status()
        st["alarms"] = c.alarms.active()
        st["firmware_version"] = VERSION
        w = c.clock.wall()
        st["wall"] = [w[0], w[1]] if w else None
        st["calibrated"] = c.calibration.calibrated
        st["refill_day"] = c.refill.day
        if c.battery is not None:
            st["battery_mv"] = c.battery()
        st["selftest"] = c.stores.selftest
        st["motor_stalled"] = c.motor.stalled()
        if c.batch is not None:
            st["wakes"] = c.batch.wakes  # control-loop wakes since boot
            st["motor_batches"] = c.batch.batches
        lg = c.stores.log
        st["log_seq"] = lg.last_seq() if lg else 0
        rf = c.stores.refusals
        st["refusals_seq"] = rf.last_seq() if rf else 0
        # Heap figures of the collection after the last request (HeapWatch.after_request):
        # counting the heap again here would cost a Pico tens of ms for the same numbers.
        h = c.heap
        st["heap_used"] = h.heap_used
        st["heap_free"] = h.heap_total - h.heap_used
        st["heap_total"] = h.heap_total
        st["heap_min_free"] = h.min_free
        st["heap_peak_live"] = h.peak_live
        st["boot_heap_used"] = h.boot_mem
        return st

    def program_show(self, args):
        p = self.ctx.pump.program
        return {"program": p.to_dict() if p else None, "state": self.ctx.pump.state}

    def drugs(self, args):
        return {"drugs": LIBRARY.to_list(), "digest": LIBRARY.verify()}

    def alarms(self, args):
        al = self.ctx.alarms
        return {"active": al.active(), "history": al.history(20), "audio_paused_ms": al.pause_remaining_ms()}

    def log(self, args):
        since = arg(args, "since", int, 0, (1 << 30) - 1, default=0, required=False) or 0
        n = arg(args, "max", int, 1, 40, default=20, required=False) or 20
        ring = arg(args, "ring", str, default="events", required=False) or "events"
        if ring not in _RINGS:
            raise Refusal("BAD_ARGS", "ring must be \"events\" or \"refusals\", not %r" % (ring[:20],))
        lg = self.ctx.stores.log if ring == "events" else self.ctx.stores.refusals
        if lg is None:
            return {"records": [], "last_seq": 0, "first_seq": 0, "corrupt": 0, "ring": ring}
        recs = lg.read(since, n, self.log_page_bytes)
        if lg.corrupt:
            # Damaged records are skipped, never returned; the damage itself is a recoverable
            # storage error worth a (medium) alarm.
            self.ctx.alarms.raise_alarm("MEMORY_ERROR", self.ctx.pump.up_s)
        return {"records": recs, "last_seq": lg.last_seq(), "first_seq": lg.first_seq(), "corrupt": lg.corrupt,
                "ring": ring}

    def patient_usage(self, args):
        """Patient bolus attempts per day and what came of them (core/usage.py), oldest first."""
        c = self.ctx
        w = c.clock.wall()
        return {"days": c.usage.report() if c.usage is not None else [], "today": w[0] if w else None}

    def history(self, args):
        hist = self.ctx.stores.history
        if hist is None:
            return {"hours": []}
        frm = arg(args, "from_hour", int, 0, 1 << 29)
        to = arg(args, "to_hour", int, 0, 1 << 29)
        if to - frm > 48:
            raise Refusal("RANGE", "ask for at most 48 hours per request")
        rows = hist.read(frm, to)
        return {"hours": [list(r) for r in rows]}
