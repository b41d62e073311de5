#!/usr/bin/env node
// Run an RP2040 (Raspberry Pi Pico) UF2 -- e.g. the official MicroPython rp2
// firmware -- in the rp2040js emulator, with the USB CDC serial port bridged
// to this process's stdin/stdout as a raw byte stream.
//
// Use pico-pty.py to put a pseudo-terminal in front of it, so that pyserial /
// mpremote can talk to it like a real /dev/ttyACM0. pico-emu/README.md is the
// full description (options, control commands and their replies, measured limits).
//
// Additions on top of stock rp2040js 1.4.x (which has no flash-write path and
// no reset on watchdog):
//   * flash_range_erase / flash_range_program ROM routines are intercepted
//     (BKPT patched into the bootrom copy) and applied to the emulated flash,
//     so littlefs on the MicroPython flash partition is writable; with --fs
//     every erase/program is also written through to the image file at once.
//   * the flash chip's unique ID (SPI command 0x4B through the SSI), so
//     machine.unique_id() is not all zeros (--unique-id, or FILE.uid).
//   * the USB host side NAKs (defers) OUT transfers until the host has data,
//     with an unbounded input queue (stock USBCDC drops >512 queued bytes and
//     answers every OUT poll with a zero-length packet).
//   * device-mode USB SOF interrupts (1 kHz) are generated; TinyUSB / MicroPython
//     use them (deferred flush of output written before the host connected,
//     RP2040-E15 bulk-IN workaround).
//   * while the CPU sleeps, emulated time is paced to wall-clock time
//     (--idle-speed, or `speed X` at run time), so time.sleep() and
//     device-side timeouts behave like on hardware instead of racing ahead.
//   * UART TX is timed: a TX FIFO drained at the baud rate, TXFF/TXFE/BUSY
//     flags, TX interrupt on the FIFO-level transition as on a PL011 (stock
//     rp2040js sends instantly and re-asserts the TX interrupt on every clear,
//     so creating a machine.UART hangs MicroPython in an interrupt storm).
//   * a minimal pad model: a GPIO's input follows its own output when driven,
//     else its pull-up/pull-down, else a value set over --control (default 0).
//     Stock rp2040js inputs only change when the embedding app sets them.
//   * PIO state machines are stepped from the main loop in step with the
//     emulated clock, honouring each SM's clock divider and delay cycles, and
//     only while enabled (stock 1.4.1 runs every SM, enabled or not, 1000
//     instructions per JS event-loop turn, decoupled from emulated time).
//     Pin changes are propagated after every PIO instruction, so no pulse is
//     lost inside a batch of cycles (stock: once per batch).
//   * observation over --control: pad levels, edge counters with timestamps
//     for every GPIO, PWM frequency/duty history, emulated time across resets.
//   * SPI frames take dataBits/baudrate of emulated time (stock: instant,
//     which loses RX bytes and hangs MicroPython's DMA-based SPI transfers).
//   * ADC channel 4 (temperature sensor) reads ~27 C instead of 0.
//   * watchdog trigger (machine.reset(), WDT timeout) reboots the emulated
//     chip, keeping the flash contents; `reset` on --control does the same as
//     the RUN pin.
//
// The modules, one job each: options.mjs (command line), status.mjs (status lines, errors),
// state.mjs (the state they share, emulated time across resets), flash.mjs (UF2, --fs image,
// the ROM's flash writes), unique-id.mjs, peripherals.mjs (USB SOF, UART TX, SPI timing),
// observe.mjs (pads, edges, PWM), pio.mjs (PIO clocking), usb-serial.mjs (stdin/stdout <->
// USB CDC), chip.mjs (one boot, chip resets), loop.mjs (the main loop, idle pacing),
// control.mjs (the control socket). This file: start-up, exit and signals.
//
// Status lines go to stderr, prefixed with "[pico-emu]".

// Only status, options and state are imported statically (they use nothing newer than Node 14),
// so that older versions reach the version check below; pico-pty.py checks too, before it
// starts node. The rest is imported once rp2040js is known to be there.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fatal, log, setQuiet, wallMs } from './status.mjs';
import { parseArgs } from './options.mjs';
import { emu, nowNs } from './state.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

{
  const major = Number(process.versions.node.split('.')[0]);
  if (!(major >= 18)) fatal(`Node.js ${process.versions.node} is too old: pico-emu needs Node.js 18 or newer`);
}

// Imported here, not at the top, so that a missing package is one sentence, not a stack trace.
let decodeBlock;
try {
  emu.lib = await import('rp2040js');
  ({ decodeBlock } = await import('uf2'));
} catch (e) {
  fatal(`the npm packages rp2040js and uf2 are not installed (${e.code || e.message}): ` +
        `run \`npm ci\` in ${path.resolve(here, '..')}`);
}
const { loadUf2, FlashStore } = await import('./flash.mjs');
const { loadUniqueId } = await import('./unique-id.mjs');
const { setUpChip, boot } = await import('./chip.mjs');
const { run, startMhzMeter } = await import('./loop.mjs');
const { listenControl } = await import('./control.mjs');
const { hostBytes } = await import('./usb-serial.mjs');

const args = emu.args = parseArgs(process.argv.slice(2));
setQuiet(args.quiet);

const uf2Blocks = loadUf2(args.uf2, decodeBlock);
const flashStore = new FlashStore(args, uf2Blocks);
const uniqueId = loadUniqueId(args);
setUpChip(flashStore, uniqueId.id, args);
if (args.control) listenControl(args.control, flashStore);
startMhzMeter();

process.stdin.on('data', hostBytes);
process.stdin.on('end', () => { log('stdin closed'); finish(0); });

let finished = false;
function finish(rc) {
  if (finished) return;
  finished = true;
  emu.running = false;
  if (emu.mcu) flashStore.save(emu.mcu.flash);
  flashStore.close();
  const simS = emu.sim ? emu.sim.clock.nanos / 1e9 : 0;
  const s = emu.stats, cycles = emu.totalCycles;
  log(`exit: wall ${(wallMs() / 1000).toFixed(1)}s, emulated time this boot ${simS.toFixed(1)}s ` +
      `(all boots ${(nowNs() / 1e9).toFixed(1)}s), ` +
      `${(cycles / 1e6).toFixed(1)}M busy cycles (${(cycles / 1e3 / wallMs()).toFixed(1)} MHz effective), ` +
      `flash erases ${s.erases}, programs ${s.programs}, reboots ${s.reboots}` +
      (flashStore.writes ? `, ${flashStore.writes} writes to ${args.fs} (${flashStore.ms.toFixed(1)} ms)` : ''));
  process.exit(rc);
}
emu.finish = finish;
process.on('SIGTERM', () => finish(0));
process.on('SIGINT', () => finish(0));
process.on('SIGUSR1', () => log(`stats: emulated ${(emu.sim.clock.nanos / 1e9).toFixed(2)}s, ` +
  `busy cycles ${(emu.totalCycles / 1e6).toFixed(1)}M, in ${emu.stats.bytesIn}B out ${emu.stats.bytesOut}B, ` +
  `erases ${emu.stats.erases}, programs ${emu.stats.programs}`));
process.on('SIGUSR2', () => {
  const r = emu.mcu.core.registers;
  log(`PC=0x${(r[15] >>> 0).toString(16)} LR=0x${(r[14] >>> 0).toString(16)} SP=0x${(r[13] >>> 0).toString(16)} ` +
      `waiting=${emu.mcu.core.waiting} emulated=${(emu.sim.clock.nanos / 1e9).toFixed(3)}s`);
});

log(`loading ${args.uf2} (${uf2Blocks.length} UF2 blocks); flash unique ID ` +
    `${uniqueId.id.toString('hex').toUpperCase()} (${uniqueId.from})`);
boot('power-on');
emu.running = true;
run();
