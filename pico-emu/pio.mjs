// PIO state machines clocked from the main loop in step with emulated time (stock 1.4.1 runs
// every SM, enabled or not, 1000 instructions per JS event-loop turn, decoupled from emulated
// time), honouring clock dividers and delay cycles, only while enabled; pin changes pushed to
// the GPIOs after every PIO instruction that makes one.

import { emu } from './state.mjs';

// Take the state machines off their own setTimeout loop (once per boot, on the fresh chip).
export function clockPioFromLoop(mcu) {
  for (const p of mcu.pio) {
    p.run = () => {};
    for (const m of p.machines) {
      m.acc = 0; m.stall = 0; m.seenCycles = 0;
      const restart = m.restart.bind(m);
      m.restart = () => { m.stall = 0; restart(); m.seenCycles = m.cycles; };   // SM_RESTART clears the delay counter
      m.clkDivRestart = () => { m.acc = 0; };               // CLKDIV_RESTART (stock: "not implemented")
    }
  }
}

// Step every enabled state machine through the PIO cycles of the last dtNs of emulated time
// (which ends at tEndNs of this boot). Pin changes are pushed to the GPIOs after each PIO
// instruction that made one, stamped with that instruction's emulated time, so pulses of
// one PIO cycle are seen even when dtNs spans thousands of cycles (stock rp2040js and the
// reference harness only looked once per batch: narrow pulses inside a batch were lost).
export function stepPIO(mcu, dtNs, tEndNs) {
  const sysPerNs = mcu.clkSys / 1e9;
  const sysCycles = dtNs * sysPerNs;
  for (const p of mcu.pio) {
    if (p.stopped) continue;
    for (const m of p.machines) {
      if (!m.enabled) continue;
      const div = (m.clockDivInt || 65536) + m.clockDivFrac / 256;
      m.acc += sysCycles / div;
      // A blocked machine (pull from an empty FIFO, wait pin/irq) does nothing until an event
      // unblocks it, and every such event calls checkWait at once: skip its cycles.
      if (m.waiting && m.stall === 0 && m.acc >= 1) {
        m.checkWait();
        if (m.waiting) { m.acc -= Math.floor(m.acc); m.seenCycles = m.cycles; continue; }
      }
      // A wait ended outside step() (a FIFO write, a pin or IRQ change calls checkWait there)
      // adds its delay cycles to m.cycles: honour them as a stall here.
      if (m.cycles > m.seenCycles) m.stall += m.cycles - m.seenCycles;
      m.seenCycles = m.cycles;
      while (m.acc >= 1) {
        m.acc -= 1;
        if (m.stall > 0) { m.stall--; continue; }
        const c0 = m.cycles;
        m.step();
        const used = m.cycles - c0;
        m.stall = used > 1 ? used - 1 : 0;
        if (p.pinValues !== p.oldPinValues || p.pinDirections !== p.oldPinDirections) {
          emu.pioStepNs = tEndNs - (m.acc * div) / sysPerNs;   // m.acc = PIO cycles since this step
          p.checkChangedPins();
          emu.pioStepNs = null;
        }
      }
      m.seenCycles = m.cycles;
    }
  }
}

// Some enabled state machine has work to do (not blocked on a wait): the CPU's sleep is then
// cut into short steps, so PIO IRQs and FIFO levels reach the CPU in time.
export function pioBusy(mcu) {
  for (const p of mcu.pio) {
    if (p.stopped) continue;
    for (const m of p.machines) if (m.enabled && (!m.waiting || m.stall > 0)) return true;
  }
  return false;
}
