// The main loop (like rp2040js's Simulator.execute, plus idle pacing, PIO clocking and chip
// resets): runs the CPU in 20 ms slices of wall time, then yields to the event loop (stdin,
// the control socket).

import { emu } from './state.mjs';
import { wallMs } from './status.mjs';
import { stepPIO, pioBusy } from './pio.mjs';
import { nextBoot } from './chip.mjs';

const CYCLE_NS = 1e9 / 125e6;     // the CPU core always executes at 125 MHz here
const PIO_IDLE_BATCH_NS = 8000;   // longest step of emulated time while the CPU sleeps and PIO runs

// Idle pacing (--idle-speed X > 0): emulated time may not run ahead of X times the wall time
// since an anchor; the CPU's sleeps are stretched (the loop waits) to keep to that. The credit
// carries over short busy stretches, so firmware that naps a millisecond at a time still
// reaches X (restarting the pacing at every wake, as the reference harness did, lost a
// setTimeout tick per nap: a time.sleep_ms(1) loop ran at x0.8 at speed 8); after a long busy
// stretch emulated time lags the anchor, and then at most PACE_SLACK_MS of wall time (times X)
// is caught up in one go, not the whole lag.
const PACE_SLACK_MS = 5;
let paceWall0 = null, paceEmu0 = 0;

// Pace from now on (a new speed, a new boot).
export function restartPacing() { paceWall0 = null; }

// emu.recentMhz: busy cycles over the last wall second.
export function startMhzMeter() {
  let c0 = 0, w0 = wallMs();
  setInterval(() => {
    const w = wallMs();
    emu.recentMhz = (emu.totalCycles - c0) / 1e3 / (w - w0);
    c0 = emu.totalCycles; w0 = w;
  }, 1000).unref();
}

export function run() {
  if (!emu.running) return;
  if (emu.rebootRequested) {
    restartPacing();
    nextBoot();
  }
  const mcu = emu.mcu, args = emu.args;
  const { core } = mcu;
  const clock = emu.sim.clock;
  const pio0 = mcu.pio[0], pio1 = mcu.pio[1];
  const sliceEnd = performance.now() + 20;
  let throttled = false;
  outer: for (;;) {
    for (let i = 0; i < 100000; i++) {
      const pioActive = !pio0.stopped || !pio1.stopped;
      if (core.waiting) {
        let next = clock.nextAlarm ? clock.nextAlarm.nanos : Infinity;
        if (pioActive && pioBusy(mcu)) next = Math.min(next, clock.nanos + PIO_IDLE_BATCH_NS);
        let allowed = Infinity;
        if (args.idleSpeed > 0) {
          const now = performance.now();
          if (paceWall0 === null) { paceWall0 = now; paceEmu0 = clock.nanos; }
          allowed = paceEmu0 + (now - paceWall0) * 1e6 * args.idleSpeed;
          const cap = clock.nanos + PACE_SLACK_MS * 1e6 * args.idleSpeed;
          if (allowed > cap) { paceEmu0 -= allowed - cap; allowed = cap; }
        }
        // The PIO runs through the interval first, then the alarms due at its end fire (so a
        // pin or FIFO an alarm changes is not seen by PIO cycles from before it).
        if (next <= allowed) {
          const dt = next - clock.nanos;
          if (pioActive) stepPIO(mcu, dt, clock.nanos + dt);
          clock.tick(dt);
          i += 50;
        } else {
          if (allowed !== Infinity && allowed > clock.nanos) {
            const dt = allowed - clock.nanos;
            if (pioActive) stepPIO(mcu, dt, clock.nanos + dt);
            clock.tick(dt);
          } else if (allowed === Infinity) {                  // fast-forward, nothing pending
            if (pioActive) stepPIO(mcu, 1e6, clock.nanos + 1e6);
            clock.tick(1e6);
          }
          throttled = allowed !== Infinity;
          break outer;
        }
      } else {
        const cycles = core.executeInstruction();
        const target = clock.nanosCounter + cycles * CYCLE_NS;
        const na = clock.nextAlarm;
        if (na !== null && na.nanos <= target) clock.tick(cycles * CYCLE_NS);   // fire due alarms
        else clock.nanosCounter = target;                                       // fast path
        emu.totalCycles += cycles;
        if (pioActive) stepPIO(mcu, cycles * CYCLE_NS, clock.nanos);
      }
      if (emu.rebootRequested || !emu.running) break outer;
    }
    if (performance.now() > sliceEnd) break;
  }
  if (throttled) setTimeout(run, 1); else setImmediate(run);
}
