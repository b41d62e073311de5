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
// Options:
//   --uf2 FILE          firmware to load (default: $PICO_UF2, else
//                       ../../shared/pico/firmware.uf2 from this folder)
//   --fs FILE           the MicroPython filesystem region lives in FILE: loaded
//                       at start (created, 0xff-filled, if missing), every
//                       flash erase/program written through at once, and saved
//                       again at exit and on every chip reset
//   --fs-offset N       flash offset of the FS region (default 0xa0000)
//   --fs-size N         size of the FS region (default 1408*1024)
//   --unique-id HEX     the flash chip's 64-bit unique ID (16 hex digits);
//                       default: kept in FILE.uid next to --fs FILE (made
//                       from 8 random bytes on first use); else all zeros
//   --idle-speed X      how fast emulated time may run while the CPU sleeps
//                       (WFI/WFE), relative to wall-clock time: 1 (default)
//                       = sleeps take real time; 0 = jump to the next timer
//                       event at once (fast-forward idle time)
//   --control PATH      listen on a Unix socket for line commands, one reply
//                       line each (README.md has every reply):
//                         pin N 0|1|z   drive GPIO N's input (z = release)  -> ok
//                         adc CH RAW    set ADC channel CH (0-4) to RAW (0-4095) -> ok
//                         uart N TEXT   feed TEXT (+ '\n') into UART N's RX -> ok
//                         stats         statistics (text); stats json: JSON
//                         time | levels | edges N | clear [N] | pwm N |
//                         speed X | reset                          -> JSON
//   --uart-log FILE     append bytes the firmware sends on UART0/UART1 to FILE
//   --uart-loopback N   connect UART N's TX to its own RX (repeatable)
//   --quiet             no status messages on stderr (errors still go there)
//   --log-level N       rp2040js log level (0 debug .. 3 error; default 3)
//
// Status lines go to stderr, prefixed with "[pico-emu]".

import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import net from 'node:net';

const here = path.dirname(fileURLToPath(import.meta.url));

// One clear sentence on stderr, then exit (status 2: could not start).
function fatal(msg) {
  process.stderr.write(`[pico-emu] error: ${msg}\n`);
  process.exit(2);
}

// (This file uses nothing newer than Node 14 up to here, so that older versions reach the check;
// pico-pty.py checks too, before it starts node.)
{
  const major = Number(process.versions.node.split('.')[0]);
  if (!(major >= 18)) fatal(`Node.js ${process.versions.node} is too old: pico-emu needs Node.js 18 or newer`);
}

// Imported here, not at the top, so that a missing package is one sentence, not a stack trace.
let rp2040js, decodeBlock, bootromB1;
try {
  rp2040js = await import('rp2040js');
  ({ decodeBlock } = await import('uf2'));
} catch (e) {
  fatal(`the npm packages rp2040js and uf2 are not installed (${e.code || e.message}): ` +
        `run \`npm ci\` in ${path.resolve(here, '..')}`);
}
({ bootromB1 } = await import('./bootrom-b1.js'));
const { Simulator, USBCDC, ConsoleLogger, LogLevel, GPIOPinState } = rp2040js;

// ---- args ----
const defaultUf2 = path.join(here, '..', '..', 'shared', 'pico', 'firmware.uf2');
const args = { uf2: process.env.PICO_UF2 || defaultUf2, fs: null,
  fsOffset: 0xa0000, fsSize: 1408 * 1024, quiet: false, logLevel: LogLevel.Error, idleSpeed: 1,
  uniqueId: null };
{
  const argv = process.argv;
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) fatal(`option ${a} needs a value`);
      return argv[++i];
    };
    const num = (what, min = -Infinity) => {
      const s = next(), v = Number(s);
      if (s.trim() === '' || !Number.isFinite(v) || v < min) fatal(`${a} needs ${what}, got '${s}'`);
      return v;
    };
    if (a === '--uf2') args.uf2 = next();
    else if (a === '--fs') args.fs = next();
    else if (a === '--fs-offset') args.fsOffset = num('a flash offset (e.g. 0xa0000)', 0);
    else if (a === '--fs-size') args.fsSize = num('a size in bytes', 1);
    else if (a === '--quiet') args.quiet = true;
    else if (a === '--control') args.control = next();
    else if (a === '--uart-log') args.uartLog = next();
    else if (a === '--uart-loopback') {
      const n = num('a UART number (0 or 1)', 0);
      if (n !== 0 && n !== 1) fatal(`--uart-loopback needs a UART number (0 or 1), got ${n}`);
      if (!args.uartLoopback) args.uartLoopback = [];
      args.uartLoopback.push(n);
    } else if (a === '--idle-speed') args.idleSpeed = num('a number >= 0 (0 = as fast as possible)', 0);
    else if (a === '--log-level') args.logLevel = num('a level 0..3', 0);
    else if (a === '--unique-id') {
      const s = next();
      if (!/^[0-9a-fA-F]{16}$/.test(s)) fatal(`--unique-id needs 16 hex digits (8 bytes), got '${s}'`);
      args.uniqueId = s.toUpperCase();
    } else fatal(`unknown option ${a} (pico-emu/README.md lists the options)`);
  }
  if (args.fsOffset + args.fsSize > 16 * 1024 * 1024) fatal('--fs-offset + --fs-size go past the 16 MB flash');
  if (args.control && Buffer.byteLength(args.control) > 100) {
    fatal(`the control socket path is too long for a Unix socket (${Buffer.byteLength(args.control)} bytes, at most 100): ${args.control}`);
  }
}
const t0 = process.hrtime.bigint();
const wallMs = () => Number(process.hrtime.bigint() - t0) / 1e6;
const log = (msg) => { if (!args.quiet) process.stderr.write(`[pico-emu] ${(wallMs() / 1000).toFixed(3)}s ${msg}\n`); };

// ---- firmware image (kept across reboots) ----
const FLASH_START = 0x10000000;
const FLASH_SIZE = 16 * 1024 * 1024;
const uf2Blocks = [];
{
  if (!fs.existsSync(args.uf2)) {
    const from = process.env.PICO_UF2 === args.uf2 ? 'given by PICO_UF2' : args.uf2 === defaultUf2
      ? 'the default: ../shared/pico/firmware.uf2 beside the repository' : 'given by --uf2';
    fatal(`no firmware image at ${path.resolve(args.uf2)} (${from}): set PICO_UF2 (or --uf2) to the official ` +
          'MicroPython v1.28.0 RPI_PICO UF2 from https://micropython.org/download/RPI_PICO/');
  }
  let data;
  try { data = fs.readFileSync(args.uf2); } catch (e) { fatal(`cannot read the firmware image ${args.uf2}: ${e.message}`); }
  for (let off = 0; off + 512 <= data.length; off += 512) {
    let b;
    try { b = decodeBlock(new Uint8Array(data.buffer, data.byteOffset + off, 512)); } catch (e) {
      fatal(`${args.uf2} is not a UF2 image (block at byte ${off}: ${e.message})`);
    }
    const addr = b.flashAddress - FLASH_START;
    if (addr < 0 || addr + b.payload.length > FLASH_SIZE) continue;   // not for the flash (e.g. RAM)
    uf2Blocks.push([addr, Uint8Array.from(b.payload)]);
  }
  if (!uf2Blocks.length) fatal(`${args.uf2} holds no RP2040 flash blocks: is it a UF2 for the Raspberry Pi Pico?`);
}
function uf2Flash() {
  const f = new Uint8Array(FLASH_SIZE).fill(0xff);
  for (const [addr, payload] of uf2Blocks) f.set(payload, addr);
  return f;
}

// ---- the --fs image: loaded at start, erase/program written through at once ----
// Flash contents that survive an emulated reboot (null: the UF2 alone).
let savedFlash = null;
let fsFd = null;
const fsStats = { writes: 0, bytes: 0, ms: 0 };
if (args.fs) {
  const existed = fs.existsSync(args.fs);
  try {
    fsFd = fs.openSync(args.fs, existed ? 'r+' : 'w+');
  } catch (e) { fatal(`cannot open the flash image ${args.fs}: ${e.message}`); }
  savedFlash = uf2Flash();
  const size = fs.fstatSync(fsFd).size;
  if (size > 0) {
    const img = Buffer.alloc(Math.min(size, args.fsSize));
    fs.readSync(fsFd, img, 0, img.length, 0);
    savedFlash.set(img, args.fsOffset);
  }
  if (size < args.fsSize) {
    // A new (or short) image: fill the rest of the region with what the chip's flash holds
    // there (0xff, erased, unless the UF2 carries a filesystem), so offsets past the old end
    // never read as the zeros of a sparse file.
    const tail = savedFlash.subarray(args.fsOffset + size, args.fsOffset + args.fsSize);
    fs.writeSync(fsFd, tail, 0, tail.length, size);
  }
  log(existed ? `loaded FS image ${args.fs} (${size} bytes) at flash+0x${args.fsOffset.toString(16)}`
              : `created FS image ${args.fs} (${args.fsSize} bytes, erased)`);
}

// Whole region, at exit and on chip reset (the write-through already keeps the file current).
function saveFs(flash) {
  if (fsFd === null) return;
  fs.writeSync(fsFd, flash, args.fsOffset, args.fsSize, 0);
  log(`saved FS region to ${args.fs}`);
}

// Apply flash bytes [addr, addr+len) to the image file, if they fall in the FS region:
// one positioned write of just those bytes, so a SIGKILL at any moment leaves the file
// as the chip's flash was after the last completed erase/program.
function writeThrough(flash, addr, len) {
  if (fsFd === null) return;
  const lo = Math.max(addr, args.fsOffset), hi = Math.min(addr + len, args.fsOffset + args.fsSize);
  if (hi <= lo) return;
  const w0 = performance.now();
  fs.writeSync(fsFd, flash, lo, hi - lo, lo - args.fsOffset);
  fsStats.ms += performance.now() - w0;
  fsStats.writes++;
  fsStats.bytes += hi - lo;
}

// ---- the flash chip's unique ID ----
let uniqueId = Buffer.alloc(8);   // stock rp2040js: zeros
let uniqueIdFrom = 'none: all zeros';
if (args.uniqueId) {
  uniqueId = Buffer.from(args.uniqueId, 'hex');
  uniqueIdFrom = '--unique-id';
} else if (args.fs) {
  const uidFile = args.fs + '.uid';
  if (fs.existsSync(uidFile)) {
    const raw = fs.readFileSync(uidFile);
    const text = raw.toString('latin1').trim();
    if (/^[0-9a-fA-F]{16}$/.test(text)) uniqueId = Buffer.from(text, 'hex');
    else if (raw.length === 8) uniqueId = raw;          // 8 raw bytes are accepted too
    else fatal(`${uidFile} should hold the board's unique ID as 16 hex digits; it holds ${JSON.stringify(text.slice(0, 40))}`);
    uniqueIdFrom = uidFile;
  } else {
    // One flash image = one board: its identity is made once and kept beside the image.
    uniqueId = crypto.randomBytes(8);
    fs.writeFileSync(uidFile, uniqueId.toString('hex').toUpperCase() + '\n');
    uniqueIdFrom = `${uidFile} (new)`;
  }
}

// ---- bootrom helpers ----
function romFuncAddr(rom32, c1, c2) {
  const rd16 = (a) => (rom32[a >>> 2] >>> ((a & 2) * 8)) & 0xffff;
  const code = c1.charCodeAt(0) | (c2.charCodeAt(0) << 8);
  for (let p = rd16(0x14); ; p += 4) {
    const c = rd16(p);
    if (c === 0) throw new Error(`ROM function ${c1}${c2} not found`);
    if (c === code) return rd16(p + 2) & ~1;
  }
}
function patchHalfword(rom32, addr, value) {
  const shift = (addr & 2) * 8;
  rom32[addr >>> 2] = ((rom32[addr >>> 2] & ~(0xffff << shift)) | (value << shift)) >>> 0;
}
const BKPT_ERASE = 0x70, BKPT_PROGRAM = 0x71;

// ---- host -> device byte queue (survives reboot) ----
let inQueue = [];      // array of Buffers
let inQueued = 0;
let stats = { erases: 0, programs: 0, reboots: 0, bytesIn: 0, bytesOut: 0 };

let sim, mcu, cdc, pendingRead, connected, bannerSeen, running = false;

// ---- emulated time across chip resets ----
// Each boot gets a new Simulator whose clock starts at 0; t_ns adds the previous boots' time.
let bootBaseNs = 0;            // emulated ns of all previous boots
let boots = 1;                 // chip boots so far (1 after power-on)
let lastReset = 'power_on';    // why the current boot started
let nextReset = null;          // why the pending reboot happens
let pioStepNs = null;          // while a PIO step is applied: the emulated time of that step
const bootNs = () => (sim ? sim.clock.nanos : 0);
const nowNs = () => bootBaseNs + (pioStepNs ?? bootNs());

// ---- observation: pad levels and edges of every GPIO ----
const NPINS = 30, RING = 512;
const FUNC_NAMES = { 0: 'f0', 1: 'spi', 2: 'uart', 3: 'i2c', 4: 'pwm', 5: 'sio', 6: 'pio0', 7: 'pio1', 8: 'clock', 9: 'usb', 31: 'null' };
function newTrack() {
  return { level: null, rising: 0, falling: 0, n: 0, t: new Float64Array(RING), lv: new Uint8Array(RING) };
}
const tracks = Array.from({ length: NPINS }, newTrack);
// What a scope on the pad sees: the output when the pad is driven, else the input level
// (pull, or what the control socket drives). resolveInput keeps rawInputValue equal to it.
const padLevel = (pin) => (pin.outputEnable ? (pin.outputValue ? 1 : 0) : (pin.rawInputValue ? 1 : 0));
function notePin(pin) {
  const tr = tracks[pin.index];
  const lv = padLevel(pin);
  if (tr.level === lv) return;
  if (tr.level !== null) {   // the first look at a pin only sets its level
    if (lv) tr.rising++; else tr.falling++;
    const i = tr.n % RING;
    tr.t[i] = nowNs(); tr.lv[i] = lv; tr.n++;
  }
  tr.level = lv;
}
function recent(tr) {
  const out = [], n = Math.min(tr.n, RING);
  for (let k = tr.n - n; k < tr.n; k++) out.push([Math.round(tr.t[k % RING]), tr.lv[k % RING]]);
  return out;
}
function clearTrack(tr) { tr.rising = 0; tr.falling = 0; tr.n = 0; }

// ---- observation: PWM output of every GPIO ----
const CSR_EN = 1, CSR_PH_CORRECT = 2, CSR_A_INV = 4, CSR_B_INV = 8;
function pwmState(n) {
  const slice = (n >> 1) & 7, isB = (n & 1) === 1;
  const ch = mcu.pwm.channels[slice];
  const enabled = !!(ch.csr & CSR_EN);
  const di = (ch.div >> 4) & 0xff, df = ch.div & 0xf;
  const div = (di || 256) + df / 16;                       // DIV.INT 0 divides by 256
  const top = ch.top;
  const cc = isB ? ch.cc >>> 16 : ch.cc & 0xffff;
  const clk = ch.timer.frequency || mcu.clkSys;            // the clock the PWM model counts with
  const freq = clk / (div * (top + 1) * (ch.csr & CSR_PH_CORRECT ? 2 : 1));
  let duty = Math.min(cc, top + 1) / (top + 1);
  if (ch.csr & (isB ? CSR_B_INV : CSR_A_INV)) duty = 1 - duty;
  const isPwm = mcu.gpio[n].functionSelect === 4;
  return { slice, channel: isB ? 'B' : 'A', enabled, div, top, cc, freq_hz: freq, duty,
           sounding: isPwm && enabled && duty > 0, isPwm };
}
const pwmTracks = Array.from({ length: NPINS }, () => ({ key: null, hist: [] }));
// History entries are [t_ns, freq_hz, duty] with duty = what the pad outputs (0 while not
// sounding), recorded when that or the frequency changes while the pin is on PWM, and when
// the pin leaves PWM. Evaluated when the firmware writes PWM or IO_BANK0 registers.
function notePwm(n) {
  const s = pwmState(n);
  const freqR = Math.round(s.freq_hz * 10) / 10;
  const eff = s.sounding ? s.duty : 0;
  const key = s.isPwm ? `${freqR}|${eff}` : 'off';
  const tr = pwmTracks[n];
  if (tr.key === key) return;
  if (tr.key !== null) {
    tr.hist.push([Math.round(nowNs()), freqR, eff]);
    if (tr.hist.length > RING) tr.hist.shift();
  }
  tr.key = key;
}
const noteAllPwm = () => { for (let n = 0; n < NPINS; n++) notePwm(n); };

// ---- chip resets: watchdog, `reset` (RUN pin) ----
function requestReboot(kind) {
  if (rebootRequested) return false;
  log(kind === 'run_pin' ? 'RUN pin reset' : `watchdog reset (reason=${kind})`);
  // pico-pty.py replaces the pty, as the board's USB port goes away and comes back.
  if (process.env.PICO_EMU_EVENT_FD) {
    try { fs.writeSync(Number(process.env.PICO_EMU_EVENT_FD), 'reset\n'); } catch {}
  }
  savedFlash = Uint8Array.from(mcu.flash);
  saveFs(mcu.flash);
  stats.reboots++;
  nextReset = kind;
  rebootRequested = true;
  return true;
}

function boot(reason) {
  sim = new Simulator();
  mcu = sim.rp2040;
  mcu.logger = new ConsoleLogger(args.logLevel);
  mcu.loadBootrom(bootromB1);          // also resets and fills flash with 0xff
  const eraseAddr = romFuncAddr(mcu.bootrom, 'R', 'E');
  const progAddr = romFuncAddr(mcu.bootrom, 'R', 'P');
  patchHalfword(mcu.bootrom, eraseAddr, 0xbe00 | BKPT_ERASE);
  patchHalfword(mcu.bootrom, progAddr, 0xbe00 | BKPT_PROGRAM);
  if (savedFlash) mcu.flash.set(savedFlash);
  else for (const [addr, payload] of uf2Blocks) mcu.flash.set(payload, addr);

  mcu.onBreak = (code) => {
    const core = mcu.core;
    const r = core.registers;
    if (code === BKPT_ERASE) {
      // void flash_range_erase(uint32_t addr, size_t count, uint32_t block_size, uint8_t block_cmd)
      const addr = r[0] & 0xffffff, end = Math.min(addr + r[1], mcu.flash.length);
      mcu.flash.fill(0xff, addr, end);
      writeThrough(mcu.flash, addr, end - addr);
      stats.erases++;
      core.PC = core.LR & ~1;
    } else if (code === BKPT_PROGRAM) {
      // void flash_range_program(uint32_t addr, const uint8_t *data, size_t count)
      const addr = r[0] & 0xffffff, data = r[1], count = r[2];
      let i = 0;
      for (; i < count && addr + i < mcu.flash.length; i++) {
        mcu.flash[addr + i] &= mcu.readUint8(data + i);   // NOR flash: program can only clear bits
      }
      writeThrough(mcu.flash, addr, i);
      stats.programs++;
      core.PC = core.LR & ~1;
    } else {
      log(`BKPT #${code} at PC=0x${((core.PC - 2) >>> 0).toString(16)}; stopping`);
      running = false;
      finish(3);
    }
  };

  const wd = mcu.peripherals[0x40058];
  wd.reason = boot.wdReason ?? 0;       // what the firmware's watchdog_caused_reboot() reads
  wd.onWatchdogTrigger = () => {
    if (rebootRequested) return;
    // Stop the (periodic) watchdog alarm, else it re-fires at once, forever.
    wd.enable = false; wd.alarm.enable = false; wd.timer.enable = false;
    boot.wdReason = wd.reason;   // FORCE (machine.reset) or TIMER (WDT timeout)
    requestReboot(wd.reason === 2 ? 'force' : 'timer');
  };

  // Flash unique ID. The SDK's flash_get_unique_id() (run at boot by pico_unique_id, read by
  // machine.unique_id()) forces QSPI CS low through IO_QSPI, then sends 0x4B, 4 dummy bytes
  // and 8 more bytes through SSI DR0, reading one byte back per byte sent. Model: each DR0
  // write pushes one response byte into a 16-entry RX FIFO, each DR0 read pops one (0 when
  // empty, as stock). The first byte after CS goes low (or after the SSI is re-enabled, which
  // also empties its FIFOs) is the command: 0x4B answers 0 then 4 zero dummies then the ID;
  // every other command answers zeros, as stock (so status polls read "not busy").
  {
    const ssi = mcu.peripherals[0x18000];
    const SSI_SSIENR = 0x08, SSI_DR0 = 0x60;
    let rx = [], pendingResp = [], cmdNext = true;
    const ssiRead = ssi.readUint32.bind(ssi), ssiWrite = ssi.writeUint32.bind(ssi);
    ssi.readUint32 = (offset) => (offset === SSI_DR0 ? (rx.length ? rx.shift() : 0) : ssiRead(offset));
    ssi.writeUint32 = (offset, value) => {
      if (offset === SSI_DR0) {
        let resp = 0;
        if (cmdNext) {
          cmdNext = false;
          pendingResp = (value & 0xff) === 0x4b ? [0, 0, 0, 0, ...uniqueId] : [];
        } else if (pendingResp.length) resp = pendingResp.shift();
        if (rx.length < 16) rx.push(resp);
      } else if (offset === SSI_SSIENR) {
        rx = []; pendingResp = []; cmdNext = true;
      }
      ssiWrite(offset, value);
    };
    // IO_QSPI stays as stock rp2040js (unimplemented: reads 0xffffffff, writes dropped): the
    // ROM's flash_put_get() loops end only because its abort check reads those ones. We only
    // watch writes to GPIO_QSPI_SS_CTRL (0x0c): OUTOVER = LOW (2) starts a command. The SDK's
    // read-modify-write through the XOR alias still lands the intended OUTOVER value here.
    // The RX FIFO is emptied there too: the ROM's loops (which never read, RXFLR being 0 in
    // rp2040js) leave stale bytes that a real chip would have drained.
    const ioq = mcu.peripherals[0x40018];
    const ioqWrite = ioq.writeUint32.bind(ioq);
    ioq.writeUint32 = (offset, value) => {
      if (offset === 0x0c && ((value >>> 8) & 3) === 2) { rx = []; pendingResp = []; cmdNext = true; }
      ioqWrite(offset, value);
    };
  }

  // Device-mode SOF: the stock controller only makes SOFs in host mode.
  const usb = mcu.usbCtrl;
  const INTR_DEV_SOF = 1 << 17, SOF_RD = 0x48;
  const usbRead = usb.readUint32.bind(usb);
  usb.readUint32 = (offset) => {
    if (offset === SOF_RD && !usb.hostMode && (usb.intRaw & INTR_DEV_SOF)) {
      usb.intRaw &= ~INTR_DEV_SOF;   // reading SOF_RD clears DEV_SOF
      usb.checkInterrupts();
    }
    return usbRead(offset);
  };
  const sofAlarm = mcu.clock.createAlarm(() => {
    if (connected && !usb.hostMode) {
      usb.sofFrameNumber = (usb.sofFrameNumber + 1) & 0x7ff;
      usb.intRaw |= INTR_DEV_SOF;
      usb.checkInterrupts();
    }
    sofAlarm.schedule(1e6);
  });
  sofAlarm.schedule(1e6);

  // UART TX model: a 32-entry (or 1 with FIFOs off) TX FIFO drained at the
  // programmed baud rate; UARTFR TXFF/TXFE/BUSY reflect it; the TX interrupt
  // is raised when the FIFO level drops to the trigger level (PL011: on the
  // transition, not while the level holds). Stock rp2040js sends bytes
  // instantly and re-asserts TXINTR on every clear (interrupt storm: creating
  // a machine.UART hung MicroPython).
  const UARTTXINTR = 1 << 5, UARTFR_TXFF = 1 << 5, UARTFR_TXFE = 1 << 7, UARTFR_BUSY = 1 << 3;
  const UARTIFLS = 0x34;
  mcu.uart.forEach((u, n) => {
    const fifo = [];          // bytes waiting in the TX FIFO
    let shifting = false;     // a byte is in the transmit shift register
    let ifls = 0x12;
    u.checkInterrupts = function () {
      this.rp2040.setInterrupt(this.irq, !!(this.interruptStatus & this.interruptMask));
    };
    const cap = () => (u.fifosEnabled ? 32 : 1);
    const rxFlags = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(u), 'flags').get;
    Object.defineProperty(u, 'flags', { get() {
      const f = rxFlags.call(u) & ~(UARTFR_TXFE | UARTFR_TXFF | UARTFR_BUSY);
      return f | (fifo.length === 0 ? UARTFR_TXFE : 0) | (fifo.length >= cap() ? UARTFR_TXFF : 0) |
        (shifting || fifo.length ? UARTFR_BUSY : 0);
    } });
    const frameNs = () => {
      const lcr = u.lineCtrlRegister;
      const bits = 1 + u.wordLength + (lcr & 2 ? 1 : 0) + (lcr & 8 ? 2 : 1);
      const baud = u.baudDivider ? u.baudRate : 115200;
      return Math.max(1, Math.round((bits * 1e9) / baud));
    };
    // TXIFLSEL: FIFO <= 1/8, 1/4, 1/2, 3/4, 7/8 full; FIFOs off: empty.
    const txLevel = () => (u.fifosEnabled ? [4, 8, 16, 24, 28][(ifls & 7)] ?? 16 : 0);
    let current = 0;
    const startNext = () => {
      current = fifo.shift();
      shifting = true;
      if (fifo.length === txLevel()) { u.interruptStatus |= UARTTXINTR; u.checkInterrupts(); }
      shiftDone.schedule(frameNs());
    };
    const shiftDone = mcu.clock.createAlarm(() => {
      shifting = false;
      if (uartLog) fs.writeSync(uartLog, Buffer.from([current]));
      if (uartLoop[n]) u.feedByte(current);
      if (fifo.length) startNext();
    });
    const uRead = u.readUint32.bind(u), uWrite = u.writeUint32.bind(u);
    u.readUint32 = (offset) => (offset === UARTIFLS ? ifls : uRead(offset));
    u.writeUint32 = (offset, value) => {
      if (offset === UARTIFLS) { ifls = value & 0x3f; return; }
      if (offset === 0 /* UARTDR */) {
        if (!u.enabled || !u.txEnabled) return;
        if (fifo.length >= cap()) return;                        // overflow: byte lost
        fifo.push(value & 0xff);
        if (fifo.length > txLevel()) { u.interruptStatus &= ~UARTTXINTR; u.checkInterrupts(); }
        if (!shifting) startNext();
        return;
      }
      uWrite(offset, value);
    };
  });

  // SPI: a frame takes dataBits/baudrate of emulated time (stock completes it
  // instantly, so with MicroPython's DMA transfers (len > ~32) the TX DMA
  // overruns the 8-entry RX FIFO, bytes are lost and the RX DMA never finishes:
  // the firmware hangs). MISO reads 0 (nothing attached).
  for (const spi of mcu.spi) {
    const done = mcu.clock.createAlarm(() => spi.completeTransmit(0));
    spi.onTransmit = () => {
      const f = spi.clockFrequency || 1e6;
      done.schedule(Math.max(1, Math.round((spi.dataBits * 1e9) / f)));
    };
  }

  // Pads: input follows own output / pulls / external drive; every change of the pad's
  // level is counted (notePin), whatever caused it (SIO, PIO, PWM, a pull, the socket).
  for (const pin of mcu.gpio) {
    const resolve = (state) => {
      switch (state) {
        case GPIOPinState.High: return true;
        case GPIOPinState.Low: return false;
        case GPIOPinState.InputPullUp: return extIn[pin.index] ?? true;
        case GPIOPinState.InputPullDown: return extIn[pin.index] ?? false;
        case GPIOPinState.InputBusKeeper: return extIn[pin.index] ?? pin.rawInputValue;
        default: return extIn[pin.index] ?? false;
      }
    };
    pin.resolveInput = () => {
      const v = resolve(pin.value);
      if (v !== pin.rawInputValue) pin.setInputValue(v);
      notePin(pin);
    };
    pin.addListener(() => pin.resolveInput());
    pin.resolveInput();     // after a reset a pin that was high drops: counted as an edge
  }
  mcu.adc.channelValues.splice(0, 5, ...adcValues);

  // PWM history: re-evaluated when the firmware writes the PWM registers (DIV/TOP/CC/CSR/EN)
  // or IO_BANK0 (a pin's function select).
  for (const per of [mcu.pwm, mcu.peripherals[0x40014]]) {
    const write = per.writeUint32.bind(per);
    per.writeUint32 = (offset, value) => { write(offset, value); noteAllPwm(); };
  }
  noteAllPwm();

  // PIO: clocked from our main loop instead of its own setTimeout loop.
  for (const p of mcu.pio) {
    p.run = () => {};
    for (const m of p.machines) {
      m.acc = 0; m.stall = 0; m.seenCycles = 0;
      const restart = m.restart.bind(m);
      m.restart = () => { m.stall = 0; restart(); m.seenCycles = m.cycles; };   // SM_RESTART clears the delay counter
      m.clkDivRestart = () => { m.acc = 0; };               // CLKDIV_RESTART (stock: "not implemented")
    }
  }

  cdc = new USBCDC(mcu.usbCtrl);
  pendingRead = null;
  connected = false;
  cdc.onDeviceConnected = () => {
    connected = true;
    log(`USB CDC configured (${reason})`);
    pump();
  };
  // Defer OUT transfers until we have data (a real host NAKs instead of
  // answering with zero-length packets).
  mcu.usbCtrl.onEndpointRead = (endpoint, size) => {
    if (endpoint !== cdc.outEndpoint) return;
    pendingRead = { endpoint, size };
    pump();
  };
  let lineBuf = '';
  cdc.onSerialData = (buf) => {
    stats.bytesOut += buf.length;
    process.stdout.write(Buffer.from(buf));
    if (!bannerSeen) {
      lineBuf += Buffer.from(buf).toString('latin1');
      if (lineBuf.includes('MicroPython v') && lineBuf.includes('>>> ')) {
        bannerSeen = true;
        log(`REPL banner seen (emulated t=${(sim.clock.nanos / 1e6).toFixed(1)} ms): ${lineBuf.match(/MicroPython v[^\r\n]*/)[0]}`);
      }
    }
  };
  mcu.core.PC = 0x10000000;   // run boot2 directly from flash (skips the bootrom's SSI flash probe)
}
let rebootRequested = false;
const extIn = new Array(30).fill(undefined);      // externally driven GPIO inputs
const adcValues = [0, 0, 0, 0, 876];             // raw 12-bit; ch4 0.706 V = 27 C
const uartLog = args.uartLog ? fs.openSync(args.uartLog, 'a') : null;
const uartLoop = [false, false];                 // --uart-loopback N: TX wired to RX
for (const n of args.uartLoopback ?? []) uartLoop[n] = true;

// ---- the control channel ----
class CommandError extends Error {}
const KNOWN = 'pin, adc, uart, time, levels, edges, clear, pwm, speed, reset, stats';
function intArg(w, i, what, lo, hi) {
  const s = w[i];
  if (s === undefined) throw new CommandError(`${w[0]} needs ${what} (${lo}..${hi})`);
  if (!/^\d+$/.test(s) || Number(s) < lo || Number(s) > hi) {
    throw new CommandError(`${w[0]}: ${what} must be a whole number ${lo}..${hi}, got '${s}'`);
  }
  return Number(s);
}
function arity(w, n, usage) {
  if (w.length !== n) throw new CommandError(`usage: ${usage}`);
}
function statsJson() {
  const wallS = wallMs() / 1000;
  return {
    t_ns: Math.round(nowNs()), boot_ns: Math.round(bootNs()), emulated_s: nowNs() / 1e9, wall_s: wallS,
    busy_cycles: totalCycles, effective_mhz: totalCycles / 1e6 / wallS, recent_mhz: recentMhz,
    erases: stats.erases, programs: stats.programs, reboots: stats.reboots, boots,
    bytes_in: stats.bytesIn, bytes_out: stats.bytesOut, idle_speed: args.idleSpeed,
    fs_writes: fsStats.writes, fs_write_bytes: fsStats.bytes, fs_write_ms: fsStats.ms,
  };
}

// One command line -> one reply line. Throws CommandError for bad input.
function controlCommand(line) {
  const w = line.trim().split(/\s+/);
  switch (w[0]) {
    case 'pin': {
      arity(w, 3, 'pin N 0|1|z');
      const n = intArg(w, 1, 'a GPIO number', 0, NPINS - 1);
      if (!['0', '1', 'z'].includes(w[2])) throw new CommandError(`pin: the level must be 0, 1 or z, got '${w[2]}'`);
      extIn[n] = w[2] === 'z' ? undefined : w[2] === '1';
      mcu.gpio[n].resolveInput();
      return 'ok';
    }
    case 'adc': {
      arity(w, 3, 'adc CH RAW');
      const ch = intArg(w, 1, 'an ADC channel', 0, 4);
      const raw = intArg(w, 2, 'a raw 12-bit value', 0, 4095);
      adcValues[ch] = raw;
      mcu.adc.channelValues[ch] = raw;
      return 'ok';
    }
    case 'uart': {
      if (w.length < 2) throw new CommandError('usage: uart N TEXT');
      const n = intArg(w, 1, 'a UART number', 0, 1);
      const text = w.slice(2).join(' ') + '\n';
      for (const b of Buffer.from(text)) mcu.uart[n].feedByte(b);
      return 'ok';
    }
    case 'stats': {
      if (w.length === 2 && w[1] === 'json') return JSON.stringify(statsJson());
      arity(w, 1, 'stats [json]');
      return `emulated ${(sim.clock.nanos / 1e9).toFixed(3)}s busy_cycles ${totalCycles} erases ${stats.erases} ` +
        `programs ${stats.programs} reboots ${stats.reboots} in ${stats.bytesIn} out ${stats.bytesOut}`;
    }
    case 'time':
      arity(w, 1, 'time');
      return JSON.stringify({ t_ns: Math.round(nowNs()), boot_ns: Math.round(bootNs()), boots, last_reset: lastReset });
    case 'levels': {
      arity(w, 1, 'levels');
      const pins = {};
      for (const pin of mcu.gpio) {
        pins[pin.index] = { func: FUNC_NAMES[pin.functionSelect] ?? `f${pin.functionSelect}`, oe: pin.outputEnable,
                            out: pin.outputValue ? 1 : 0, in: pin.rawInputValue ? 1 : 0 };
      }
      return JSON.stringify({ t_ns: Math.round(nowNs()), pins });
    }
    case 'edges': {
      arity(w, 2, 'edges N');
      const n = intArg(w, 1, 'a GPIO number', 0, NPINS - 1);
      const tr = tracks[n];
      return JSON.stringify({ pin: n, level: tr.level ?? padLevel(mcu.gpio[n]), rising: tr.rising, falling: tr.falling,
                              recent: recent(tr) });
    }
    case 'clear': {
      if (w.length === 1) {
        tracks.forEach(clearTrack);
        for (const p of pwmTracks) p.hist = [];
      } else {
        arity(w, 2, 'clear [N]');
        const n = intArg(w, 1, 'a GPIO number', 0, NPINS - 1);
        clearTrack(tracks[n]);
        pwmTracks[n].hist = [];
      }
      return JSON.stringify({ ok: true });
    }
    case 'pwm': {
      arity(w, 2, 'pwm N');
      const n = intArg(w, 1, 'a GPIO number', 0, NPINS - 1);
      const s = pwmState(n);
      return JSON.stringify({ pin: n, slice: s.slice, channel: s.channel, enabled: s.enabled, div: s.div, top: s.top,
                              cc: s.cc, freq_hz: s.freq_hz, duty: s.duty, sounding: s.sounding,
                              history: pwmTracks[n].hist });
    }
    case 'speed': {
      if (w.length === 2) {
        const x = Number(w[1]);
        if (!Number.isFinite(x) || x < 0 || w[1] === '') {
          throw new CommandError(`speed must be a number >= 0 (0 = as fast as possible), got '${w[1]}'`);
        }
        args.idleSpeed = x;
        paceWall0 = null;     // pace from now on at the new speed
      } else arity(w, 1, 'speed [X]');
      return JSON.stringify({ idle_speed: args.idleSpeed });
    }
    case 'reset':
      arity(w, 1, 'reset');
      boot.wdReason = 0;       // the RUN pin resets the watchdog too: REASON reads 0
      requestReboot('run_pin');
      return JSON.stringify({ ok: true });
    default:
      throw new CommandError(`unknown command '${w[0]}' (known: ${KNOWN})`);
  }
}
function controlReply(line) {
  try {
    return controlCommand(line);
  } catch (e) {
    // Bad input is the client's problem; a bug here must not take the board down either.
    return JSON.stringify({ error: e instanceof CommandError ? e.message : `internal error: ${e.message}` });
  }
}
if (args.control) {
  try { fs.unlinkSync(args.control); } catch {}
  const server = net.createServer((sock) => {
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i); buf = buf.slice(i + 1);
        if (line.trim()) sock.write(controlReply(line) + '\n');
      }
      if (buf.length > 65536) {
        sock.end(JSON.stringify({ error: 'command line longer than 64 KiB' }) + '\n');
        buf = '';
      }
    });
    sock.on('error', () => {});
  });
  server.on('error', (e) => fatal(`cannot listen on the control socket ${args.control}: ${e.message}`));
  server.listen(args.control);
}

function pump() {
  if (!pendingRead || !connected || inQueued === 0) return;
  const { endpoint, size } = pendingRead;
  pendingRead = null;
  const out = new Uint8Array(Math.min(size, inQueued));
  let n = 0;
  while (n < out.length) {
    const head = inQueue[0];
    const take = Math.min(head.length, out.length - n);
    out.set(head.subarray(0, take), n);
    n += take;
    if (take === head.length) inQueue.shift(); else inQueue[0] = head.subarray(take);
  }
  inQueued -= n;
  mcu.usbCtrl.endpointReadDone(endpoint, out);
}

// ---- main loop (like Simulator.execute, plus idle pacing, PIO clocking, reboot) ----
const CYCLE_NS = 1e9 / 125e6;     // the CPU core always executes at 125 MHz here
const PIO_IDLE_BATCH_NS = 8000;   // longest step of emulated time while the CPU sleeps and PIO runs
let totalCycles = 0;
// Idle pacing (--idle-speed X > 0): emulated time may not run ahead of X times the wall time
// since an anchor; the CPU's sleeps are stretched (the loop waits) to keep to that. The credit
// carries over short busy stretches, so firmware that naps a millisecond at a time still
// reaches X (restarting the pacing at every wake, as the reference harness did, lost a
// setTimeout tick per nap: a time.sleep_ms(1) loop ran at x0.8 at speed 8); after a long busy
// stretch emulated time lags the anchor, and then at most PACE_SLACK_MS of wall time (times X)
// is caught up in one go, not the whole lag.
const PACE_SLACK_MS = 5;
let paceWall0 = null, paceEmu0 = 0;
let recentMhz = 0;
{
  let c0 = 0, w0 = wallMs();
  setInterval(() => {
    const w = wallMs();
    recentMhz = (totalCycles - c0) / 1e3 / (w - w0);
    c0 = totalCycles; w0 = w;
  }, 1000).unref();
}

// Step every enabled state machine through the PIO cycles of the last dtNs of emulated time
// (which ends at tEndNs of this boot). Pin changes are pushed to the GPIOs after each PIO
// instruction that made one, stamped with that instruction's emulated time, so pulses of
// one PIO cycle are seen even when dtNs spans thousands of cycles (stock rp2040js and the
// reference harness only looked once per batch: narrow pulses inside a batch were lost).
function stepPIO(dtNs, tEndNs) {
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
          pioStepNs = tEndNs - (m.acc * div) / sysPerNs;   // m.acc = PIO cycles since this step
          p.checkChangedPins();
          pioStepNs = null;
        }
      }
      m.seenCycles = m.cycles;
    }
  }
}

// Some enabled state machine has work to do (not blocked on a wait): the CPU's sleep is then
// cut into PIO_IDLE_BATCH_NS steps, so PIO IRQs and FIFO levels reach the CPU in time.
function pioBusy() {
  for (const p of mcu.pio) {
    if (p.stopped) continue;
    for (const m of p.machines) if (m.enabled && (!m.waiting || m.stall > 0)) return true;
  }
  return false;
}

function run() {
  if (!running) return;
  if (rebootRequested) {
    rebootRequested = false;
    bannerSeen = false;
    paceWall0 = null;
    inQueue = []; inQueued = 0;          // bytes in flight are lost on a real reset too
    bootBaseNs += sim.clock.nanos;
    boots++;
    lastReset = nextReset;
    boot('after reset');
  }
  const { core } = mcu;
  const clock = sim.clock;
  const pio0 = mcu.pio[0], pio1 = mcu.pio[1];
  const sliceEnd = performance.now() + 20;
  let throttled = false;
  outer: for (;;) {
    for (let i = 0; i < 100000; i++) {
      const pioActive = !pio0.stopped || !pio1.stopped;
      if (core.waiting) {
        let next = clock.nextAlarm ? clock.nextAlarm.nanos : Infinity;
        if (pioActive && pioBusy()) next = Math.min(next, clock.nanos + PIO_IDLE_BATCH_NS);
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
          if (pioActive) stepPIO(dt, clock.nanos + dt);
          clock.tick(dt);
          i += 50;
        } else {
          if (allowed !== Infinity && allowed > clock.nanos) {
            const dt = allowed - clock.nanos;
            if (pioActive) stepPIO(dt, clock.nanos + dt);
            clock.tick(dt);
          } else if (allowed === Infinity) {                  // fast-forward, nothing pending
            if (pioActive) stepPIO(1e6, clock.nanos + 1e6);
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
        totalCycles += cycles;
        if (pioActive) stepPIO(cycles * CYCLE_NS, clock.nanos);
      }
      if (rebootRequested || !running) break outer;
    }
    if (performance.now() > sliceEnd) break;
  }
  if (throttled) setTimeout(run, 1); else setImmediate(run);
}

process.stdin.on('data', (chunk) => {
  stats.bytesIn += chunk.length;
  inQueue.push(chunk);
  inQueued += chunk.length;
  pump();
});
process.stdin.on('end', () => { log('stdin closed'); finish(0); });

let finished = false;
function finish(rc) {
  if (finished) return;
  finished = true;
  running = false;
  if (mcu) saveFs(mcu.flash);
  if (fsFd !== null) fs.closeSync(fsFd);
  const simS = sim ? sim.clock.nanos / 1e9 : 0;
  log(`exit: wall ${(wallMs() / 1000).toFixed(1)}s, emulated time this boot ${simS.toFixed(1)}s ` +
      `(all boots ${(nowNs() / 1e9).toFixed(1)}s), ` +
      `${(totalCycles / 1e6).toFixed(1)}M busy cycles (${(totalCycles / 1e3 / wallMs()).toFixed(1)} MHz effective), ` +
      `flash erases ${stats.erases}, programs ${stats.programs}, reboots ${stats.reboots}` +
      (fsStats.writes ? `, ${fsStats.writes} writes to ${args.fs} (${fsStats.ms.toFixed(1)} ms)` : ''));
  process.exit(rc);
}
process.on('SIGTERM', () => finish(0));
process.on('SIGINT', () => finish(0));
process.on('SIGUSR1', () => log(`stats: emulated ${(sim.clock.nanos / 1e9).toFixed(2)}s, busy cycles ${(totalCycles / 1e6).toFixed(1)}M, ` +
  `in ${stats.bytesIn}B out ${stats.bytesOut}B, erases ${stats.erases}, programs ${stats.programs}`));

process.on('SIGUSR2', () => {
  const r = mcu.core.registers;
  log(`PC=0x${(r[15] >>> 0).toString(16)} LR=0x${(r[14] >>> 0).toString(16)} SP=0x${(r[13] >>> 0).toString(16)} ` +
      `waiting=${mcu.core.waiting} emulated=${(sim.clock.nanos / 1e9).toFixed(3)}s`);
});

log(`loading ${args.uf2} (${uf2Blocks.length} UF2 blocks); flash unique ID ${uniqueId.toString('hex').toUpperCase()} (${uniqueIdFrom})`);
boot('power-on');
running = true;
run();
