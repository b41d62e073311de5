# Fake `rp2` for boards/pico tests. asm_pio really runs the program body, as the real
# assembler does, and records each instruction; StateMachine records FIFO words; run() is a
# tiny PIO emulator (just the instructions our programs use) so a test can count the STEP
# pulses and measure their period in state-machine cycles.

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

        names = {"label": label, "wrap_target": wrap_target, "wrap": wrap, "rel": rel}
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
        MACHINES[id] = self
        if program is not None:
            self.init(program, **kw)

    def init(self, program, **kw):
        # As on the chip: (re)initialising clears the FIFOs and the side-set pins.
        self.program = program
        self.kw = kw
        self.fifo = []
        self.running = False
        self.inits += 1

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

    def irq(self, handler=None, trigger=1, hard=False):
        self.handler = handler
        self.hard = hard

    def run(self, max_cycles=1000000000000):
        """Emulate the program until it blocks on an empty FIFO. Fires the IRQ handler at each
        irq instruction. Returns a Trace."""
        if not self.running:
            raise RuntimeError("state machine not active")
        return emulate(self.program, self.fifo, self.handler, self, max_cycles)


def _wrap32(v):
    return v & 0xFFFFFFFF


class Trace:
    """What the side-set pin did: rising-edge count, the first edges' cycles, a histogram of
    rising-to-rising periods, and the cycles at which irq instructions ran."""

    def __init__(self):
        self.rising = 0
        self.first = []      # cycle of the first 100 rising edges
        self.periods = {}    # period in cycles -> count
        self.irqs = []
        self.cycles = 0
        self._last = None

    def edge(self, cycle):
        self.rising += 1
        if len(self.first) < 100:
            self.first.append(cycle)
        if self._last is not None:
            d = cycle - self._last
            self.periods[d] = self.periods.get(d, 0) + 1
        self._last = cycle


def emulate(prog, fifo, handler=None, sm=None, max_cycles=1000000000000):
    ins = prog.instrs
    shift_right = prog.kw.get("out_shiftdir", 0) == PIO.SHIFT_RIGHT
    regs = {"x": 0, "y": 0, "osr": 0, "isr": 0}
    pc = 0
    cycle = 0
    level = 0
    tr = Trace()
    wrap_top = prog.labels.get("__wrap", len(ins) - 1)
    wrap_bottom = prog.labels.get("__wrap_target", 0)
    while cycle < max_cycles:
        i = ins[pc]
        if i.op == "pull" and not fifo:
            tr.cycles = cycle
            return tr  # stalls here: the move is over
        if i.sideset is not None:
            if i.sideset and not level:
                tr.edge(cycle)
            level = i.sideset
        nxt = pc + 1
        if i.op == "pull":
            regs["osr"] = fifo.pop(0)
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
            regs[i.a] = regs[i.b]
        elif i.op == "jmp":
            cond = i.a if i.b is not None else None
            target = prog.labels[i.b if i.b is not None else i.a]
            if cond is None:
                nxt = target
            elif cond in ("x_dec", "y_dec") and target == pc:
                # a delay loop on itself: run all its iterations at once (same cycles)
                r = cond[0]
                cycle += regs[r] * (1 + i.dly)
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
            tr.irqs.append(cycle)
            if handler is not None:
                handler(sm)
        elif i.op == "nop":
            pass
        else:
            raise NotImplementedError("fake PIO op " + i.op)
        cycle += 1 + i.dly
        if pc == wrap_top and nxt == pc + 1:
            nxt = wrap_bottom
        pc = nxt
    raise RuntimeError("fake PIO: no stall within %d cycles" % max_cycles)
