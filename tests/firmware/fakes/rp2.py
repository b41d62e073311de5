# Fake `rp2` for boards/pico tests. asm_pio really runs the program body, as the real
# assembler does, and records each instruction; StateMachine records FIFO words; run() is a
# tiny PIO emulator (just the instructions our programs use) so a test can count the STEP
# pulses, measure their period in state-machine cycles and see what the SET pin (EN) did.
# The emulator keeps its state between runs, so a test can run a batch part of the way,
# look at the driver, and go on; exec() takes the encoded instructions the driver forces.

from collections import namedtuple

PROGRAMS = []   # every program assembled
MACHINES = {}   # sm id -> StateMachine


def reset():
    MACHINES.clear()


class PIO:
    IN_LOW = 0
    IN_HIGH = 1
    OUT_LOW = 2
    OUT_HIGH = 3
    SHIFT_LEFT = 0
    SHIFT_RIGHT = 1
    JOIN_NONE = 0
    JOIN_TX = 1
    JOIN_RX = 2
    IRQ_SM0 = 0x100


class Instr:
    def __init__(self, op, a=None, b=None):
        self.op = op
        self.a = a
        self.b = b
        self.sideset = None
        self.dly = 0

    def side(self, v):
        self.sideset = v
        return self

    def delay(self, n):
        self.dly = n
        return self

    def __getitem__(self, n):
        self.dly = n
        return self

    def __repr__(self):
        return "%s(%r,%r).side(%r)[%d]" % (self.op, self.a, self.b, self.sideset, self.dly)


Frozen = namedtuple("Frozen", ("op", "a", "b", "sideset", "dly"))


class Program:
    def __init__(self, name, kw):
        self.name = name
        self.kw = kw
        self.instrs = []
        self.labels = {}


_OPERANDS = ("x", "y", "osr", "isr", "pins", "pindirs", "null", "status", "pc", "exec",
             "block", "noblock", "iffull", "ifempty", "x_dec", "y_dec", "not_x", "not_y",
             "x_not_y", "pin", "not_osre", "gpio", "clear", "wait")


def asm_pio(**kw):
    def deco(f):
        prog = Program(f.__name__, kw)

        def emit(op):
            def mk(a=None, b=None):
                i = Instr(op, a, b)
                prog.instrs.append(i)
                return i
            return mk

        def label(name):
            prog.labels[name] = len(prog.instrs)

        def wrap_target():
            prog.labels["__wrap_target"] = len(prog.instrs)

        def wrap():
            prog.labels["__wrap"] = len(prog.instrs) - 1

        def rel(n):
            return ("rel", n)

        def invert(r):
            return ("invert", r)

        names = {"label": label, "wrap_target": wrap_target, "wrap": wrap, "rel": rel,
                 "invert": invert}
        for op in ("pull", "push", "out", "in_", "mov", "jmp", "irq", "set", "nop", "wait"):
            names[op] = emit(op)
        for o in _OPERANDS:
            names[o] = o
        g = f.__globals__
        saved = {}
        for k in names:
            if k in g:
                saved[k] = g[k]
        g.update(names)
        try:
            f()
        finally:
            for k in names:
                if k in saved:
                    g[k] = saved[k]
                else:
                    del g[k]
        # Frozen into tuples: the real assembler keeps one halfword an instruction, and the heap
        # rig (tests/heap) counts what a program costs on import; an object each would not.
        prog.instrs = [Frozen(i.op, i.a, i.b, i.sideset, i.dly) for i in prog.instrs]
        PROGRAMS.append(prog)
        return prog
    return deco


class StateMachine:
    def __init__(self, id, program=None, **kw):
        self.id = id
        self.program = None
        self.kw = {}
        self.fifo = []        # words not yet consumed by the (emulated) PIO
        self.words = []       # every word ever put, in order
        self.running = False
        self.handler = None
        self.hard = False
        self.inits = 0
        self.execs = 0        # instructions forced by exec()
        self.on_irq = None    # test hook: called with the absolute cycle before the handler
        self._reset_state()
        MACHINES[id] = self
        if program is not None:
            self.init(program, **kw)

    def _reset_state(self):
        self.pc = 0
        self.regs = {"x": 0, "y": 0, "osr": 0, "isr": 0}
        self.level = 0        # the side-set pin (STEP)
        self.cycle = 0        # cycles run since init
        self.irq_flag = False

    def init(self, program, **kw):
        # As on the chip: (re)initialising clears the FIFOs, restarts the program and drives
        # the side-set pin low and the SET pins to set_init.
        self.program = program
        self.kw = kw
        self.fifo = []
        self.running = False
        self.inits += 1
        self._reset_state()
        pin = kw.get("set_base")
        init = program.kw.get("set_init")
        if pin is not None and init is not None:
            pin.value(1 if init == PIO.OUT_HIGH else 0)

    def set_pin(self):
        return self.kw.get("set_base")

    def active(self, v=None):
        if v is None:
            return self.running
        self.running = bool(v)
        return self.running

    def restart(self):
        pass

    def put(self, value, shift=0):
        if not isinstance(value, int):
            raise TypeError("fake put takes an int")
        if value < 0 or value >= (1 << 32):
            raise ValueError("word out of 32 bits")
        limit = 8 if self.program.kw.get("fifo_join") == PIO.JOIN_TX else 4
        if len(self.fifo) >= limit:
            raise RuntimeError("fake PIO: put would block on a full TX FIFO")
        w = (value << shift) & 0xFFFFFFFF
        self.fifo.append(w)
        self.words.append(w)

    def tx_fifo(self):
        return len(self.fifo)

    def rx_fifo(self):
        return 0

    def exec(self, instr):
        """The encoded instructions the driver forces: SET (pins, x, y) and IRQ clear."""
        if not isinstance(instr, int):
            raise TypeError("fake exec takes an encoded int")
        self.execs += 1
        self.level = (instr >> 12) & 1  # one side-set bit, not optional
        op = instr >> 13
        if op == 7:
            dest = (instr >> 5) & 7
            data = instr & 31
            if dest == 0:
                pin = self.set_pin()
                if pin is not None:
                    pin.value(data & 1)
            elif dest == 1:
                self.regs["x"] = data
            elif dest == 2:
                self.regs["y"] = data
            else:
                raise NotImplementedError("fake exec: set destination %d" % dest)
        elif op == 6 and instr & 0x40:
            self.irq_flag = False
        else:
            raise NotImplementedError("fake exec: instruction 0x%04x" % instr)

    def irq(self, handler=None, trigger=1, hard=False):
        self.handler = handler
        self.hard = hard

    def run(self, max_cycles=1000000000000):
        """Emulate the program from where it stands until it blocks on an empty FIFO, or for
        max_cycles. Fires the IRQ handler at each irq instruction. Returns a Trace."""
        if not self.running:
            raise RuntimeError("state machine not active")
        return emulate(self, max_cycles)


def _wrap32(v):
    return v & 0xFFFFFFFF


class Trace:
    """What the pins did: STEP rising-edge count, the first edges' cycles, a histogram of
    rising-to-rising periods, the cycles at which irq instructions ran, the SET pin's (EN's)
    level at each STEP edge, and its changes."""

    def __init__(self):
        self.rising = 0
        self.first = []      # cycle (since init) of the first 100 rising edges
        self.periods = {}    # period in cycles -> count
        self.irqs = []
        self.cycles = 0      # cycles this run took
        self.set_at_edge = {}  # SET pin level at a STEP rising edge -> count
        self.set_changes = []  # (cycle, level) of the first 200 SET pin changes
        self._last = None

    def edge(self, cycle, set_level):
        self.rising += 1
        self.set_at_edge[set_level] = self.set_at_edge.get(set_level, 0) + 1
        if len(self.first) < 100:
            self.first.append(cycle)
        if self._last is not None:
            d = cycle - self._last
            self.periods[d] = self.periods.get(d, 0) + 1
        self._last = cycle


def _src(regs, b):
    if isinstance(b, tuple) and b[0] == "invert":
        return _wrap32(~regs[b[1]])
    return regs[b]


def emulate(sm, max_cycles):
    prog = sm.program
    fifo = sm.fifo
    ins = prog.instrs
    shift_right = prog.kw.get("out_shiftdir", 0) == PIO.SHIFT_RIGHT
    regs = sm.regs
    pin = sm.set_pin()
    tr = Trace()
    wrap_top = prog.labels.get("__wrap", len(ins) - 1)
    wrap_bottom = prog.labels.get("__wrap_target", 0)
    c0 = sm.cycle
    end = c0 + max_cycles
    while sm.cycle < end:
        pc = sm.pc
        i = ins[pc]
        if i.op == "pull" and i.a == "block" and not fifo:
            break  # stalls here: nothing queued
        if i.sideset is not None:
            if i.sideset and not sm.level:
                tr.edge(sm.cycle, pin.value() if pin is not None else None)
            sm.level = i.sideset
        nxt = pc + 1
        cost = 1 + i.dly
        if i.op == "pull":
            if fifo:
                regs["osr"] = fifo.pop(0)
            else:
                regs["osr"] = regs["x"]  # pull noblock from an empty FIFO copies X
        elif i.op == "out":
            n = i.b
            v = regs["osr"]
            mask = (1 << n) - 1
            if shift_right:
                regs[i.a] = v & mask
                regs["osr"] = v >> n
            else:
                regs[i.a] = (v >> (32 - n)) & mask
                regs["osr"] = _wrap32(v << n)
        elif i.op == "mov":
            regs[i.a] = _src(regs, i.b)
        elif i.op == "set":
            if i.a == "pins":
                if pin is not None and pin.value() != (i.b & 1):
                    pin.value(i.b & 1)
                    if len(tr.set_changes) < 200:
                        tr.set_changes.append((sm.cycle, i.b & 1))
            else:
                regs[i.a] = i.b
        elif i.op == "jmp":
            cond = i.a if i.b is not None else None
            target = prog.labels[i.b if i.b is not None else i.a]
            if cond is None:
                nxt = target
            elif cond in ("x_dec", "y_dec") and target == pc:
                # A delay loop on itself: run as many of its iterations as the budget holds.
                r = cond[0]
                left = regs[r] + 1               # iterations still to run
                fit = (end - sm.cycle) // cost
                if fit < left:
                    if fit == 0:
                        break  # the budget ends inside one iteration
                    sm.cycle += fit * cost
                    regs[r] -= fit
                    continue
                sm.cycle += (left - 1) * cost  # the last one is counted below
                regs[r] = 0xFFFFFFFF
            elif cond in ("x_dec", "y_dec"):
                r = cond[0]
                if regs[r] != 0:
                    nxt = target
                regs[r] = _wrap32(regs[r] - 1)
            elif cond in ("not_x", "not_y"):
                if regs[cond[4]] == 0:
                    nxt = target
            else:
                raise NotImplementedError("jmp condition " + cond)
        elif i.op == "irq":
            tr.irqs.append(sm.cycle)
            sm.irq_flag = True
            if sm.on_irq is not None:
                sm.on_irq(sm.cycle)
            if sm.handler is not None:
                sm.irq_flag = False  # MicroPython acknowledges before it calls the handler
                sm.handler(sm)
            if i.a == "block" and sm.irq_flag:
                sm.cycle += cost
                break  # irq block: waits until the flag is cleared
            if not sm.running:
                break  # the handler stopped the machine
        elif i.op == "nop":
            pass
        else:
            raise NotImplementedError("fake PIO op " + i.op)
        sm.cycle += cost
        if pc == wrap_top and nxt == pc + 1:
            nxt = wrap_bottom
        sm.pc = nxt
    tr.cycles = sm.cycle - c0
    return tr
