// One boot of the emulated chip: a new Simulator with the boot ROM, the flash as it was,
// and every model this emulator adds installed on it; and the chip resets (watchdog, the
// RUN pin) that end a boot, keeping the flash and continuing emulated time.

import fs from 'node:fs';
import { emu } from './state.mjs';
import { log } from './status.mjs';
import { bootromB1 } from './bootrom-b1.js';
import { trapFlashWrites } from './flash.mjs';
import { installUniqueId } from './unique-id.mjs';
import { installUsbSof, installUartTx, installSpiTiming } from './peripherals.mjs';
import { installPads, installPwmWatch } from './observe.mjs';
import { clockPioFromLoop } from './pio.mjs';
import { attachCdc, dropQueued, isConnected } from './usb-serial.mjs';

let flashStore = null, uniqueId = null, uartLogFd = null;
const uartLoop = [false, false];   // --uart-loopback N: TX wired to RX

// What every boot needs from the start-up (pico-emu.mjs): the flash, the ID, the UART wiring.
export function setUpChip(store, id, args) {
  flashStore = store;
  uniqueId = id;
  uartLogFd = args.uartLog ? fs.openSync(args.uartLog, 'a') : null;
  for (const n of args.uartLoopback) uartLoop[n] = true;
}

// Ask for a chip reset (kind: 'force' | 'timer' | 'run_pin'); it happens at the main loop's
// next turn (nextBoot). False if one is already pending.
export function requestReboot(kind) {
  if (emu.rebootRequested) return false;
  log(kind === 'run_pin' ? 'RUN pin reset' : `watchdog reset (reason=${kind})`);
  // pico-pty.py replaces the pty, as the board's USB port goes away and comes back.
  if (process.env.PICO_EMU_EVENT_FD) {
    try { fs.writeSync(Number(process.env.PICO_EMU_EVENT_FD), 'reset\n'); } catch {}
  }
  flashStore.keep(emu.mcu.flash);
  emu.stats.reboots++;
  emu.nextReset = kind;
  emu.rebootRequested = true;
  return true;
}

// The pending chip reset: this boot's emulated time joins the previous boots', a new boot starts.
export function nextBoot() {
  emu.rebootRequested = false;
  dropQueued();
  emu.bootBaseNs += emu.sim.clock.nanos;
  emu.boots++;
  emu.lastReset = emu.nextReset;
  boot('after reset');
}

export function boot(reason) {
  const { Simulator, ConsoleLogger } = emu.lib;
  emu.sim = new Simulator();
  const mcu = emu.mcu = emu.sim.rp2040;
  mcu.logger = new ConsoleLogger(emu.args.logLevel);
  mcu.loadBootrom(bootromB1);          // also resets and fills flash with 0xff
  trapFlashWrites(mcu, flashStore);
  flashStore.load(mcu.flash);

  const wd = mcu.peripherals[0x40058];
  wd.reason = emu.wdReason;            // what the firmware's watchdog_caused_reboot() reads
  wd.onWatchdogTrigger = () => {
    if (emu.rebootRequested) return;
    // Stop the (periodic) watchdog alarm, else it re-fires at once, forever.
    wd.enable = false; wd.alarm.enable = false; wd.timer.enable = false;
    emu.wdReason = wd.reason;          // FORCE (machine.reset) or TIMER (WDT timeout)
    requestReboot(wd.reason === 2 ? 'force' : 'timer');
  };

  installUniqueId(mcu, uniqueId);
  installUsbSof(mcu, isConnected);
  installUartTx(mcu, uartLogFd, uartLoop);
  installSpiTiming(mcu);
  installPads(mcu);
  mcu.adc.channelValues.splice(0, 5, ...emu.adcValues);
  installPwmWatch(mcu);
  clockPioFromLoop(mcu);
  attachCdc(mcu, reason);
  mcu.core.PC = 0x10000000;   // run boot2 directly from flash (skips the bootrom's SSI flash probe)
}
