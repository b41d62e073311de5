// The one emulator state the modules share: the current boot's Simulator and chip, emulated
// time across chip resets, the counters `stats` reports, and what the control socket drives.
// One object, not module-level variables, so that each module reads as "emu.x" what it does
// not own, and a chip reset (chip.mjs) replaces sim/mcu in one place.

export const emu = {
  args: null,              // the parsed command line (idleSpeed changes at run time: `speed`)
  lib: null,               // the rp2040js module (imported once its presence is checked)
  sim: null,               // this boot's Simulator; a chip reset makes a new one
  mcu: null,               // sim.rp2040
  running: false,          // the main loop runs (false: stopping)
  rebootRequested: false,  // a chip reset is due at the main loop's next turn
  finish: null,            // (rc) => stop the emulator, saving the flash (set by pico-emu.mjs)

  // Each boot gets a new Simulator whose clock starts at 0; t_ns adds the previous boots' time.
  bootBaseNs: 0,           // emulated ns of all previous boots
  boots: 1,                // chip boots so far (1 after power-on)
  lastReset: 'power_on',   // why the current boot started
  nextReset: null,         // why the pending reboot happens
  wdReason: 0,             // the watchdog REASON the next boot's firmware reads
  pioStepNs: null,         // while a PIO step is applied: the emulated time of that step

  totalCycles: 0,          // busy CPU cycles, all boots
  recentMhz: 0,            // busy cycles over the last wall second
  stats: { erases: 0, programs: 0, reboots: 0, bytesIn: 0, bytesOut: 0 },

  extIn: new Array(30).fill(undefined),   // GPIO inputs driven from outside (`pin N 0|1`)
  adcValues: [0, 0, 0, 0, 876],           // raw 12-bit; ch4 0.706 V = 27 C
};

export const bootNs = () => (emu.sim ? emu.sim.clock.nanos : 0);
export const nowNs = () => emu.bootBaseNs + (emu.pioStepNs ?? bootNs());
