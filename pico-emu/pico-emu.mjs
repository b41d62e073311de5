#!/usr/bin/env node
// Run an RP2040 (Raspberry Pi Pico) UF2 -- e.g. the official MicroPython rp2
// firmware -- in the rp2040js emulator, with the USB CDC serial port bridged
// to this process's stdin/stdout as a raw byte stream.
//
// Use pico-pty.py to put a pseudo-terminal in front of it, so that pyserial /
// mpremote can talk to it like a real /dev/ttyACM0.
//
// Additions on top of stock rp2040js 1.4.x (which has no flash-write path and
// no reset on watchdog):
//   * flash_range_erase / flash_range_program ROM routines are intercepted
//     (BKPT patched into the bootrom copy) and applied to the emulated flash,
//     so littlefs on the MicroPython flash partition is writable.
//   * the USB host side NAKs (defers) OUT transfers until the host has data,
//     with an unbounded input queue (stock USBCDC drops >512 queued bytes and
//     answers every OUT poll with a zero-length packet).
//   * device-mode USB SOF interrupts (1 kHz) are generated; TinyUSB / MicroPython
//     use them (deferred flush of output written before the host connected,
//     RP2040-E15 bulk-IN workaround).
//   * while the CPU sleeps, emulated time is paced to wall-clock time
//     (--idle-speed), so time.sleep() and device-side timeouts behave like
//     on hardware instead of racing ahead.
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
//   * SPI frames take dataBits/baudrate of emulated time (stock: instant,
//     which loses RX bytes and hangs MicroPython's DMA-based SPI transfers).
//   * ADC channel 4 (temperature sensor) reads ~27 C instead of 0.
//   * watchdog trigger (machine.reset(), WDT timeout) reboots the emulated
//     chip, keeping the flash contents.
//
// Options:
//   --uf2 FILE          firmware to load (default ../firmware.uf2)
//   --fs FILE           persist the MicroPython filesystem region: loaded at
//                       start if FILE exists, written back at exit/reboot
//   --fs-offset N       flash offset of the FS region (default 0xa0000)
//   --fs-size N         size of the FS region (default 1408*1024)
//   --idle-speed X      how fast emulated time may run while the CPU sleeps
//                       (WFI/WFE), relative to wall-clock time: 1 (default)
//                       = sleeps take real time; 0 = jump to the next timer
//                       event at once (fast-forward idle time)
//   --control PATH      listen on a Unix socket for line commands:
//                         pin N 0|1|z   drive GPIO N's input (z = release)
//                         adc CH RAW    set ADC channel CH (0-4) to RAW (0-4095)
//                         uart N TEXT   feed TEXT (+ '\n') into UART N's RX
//                         stats         print emulator statistics
//   --uart-log FILE     append bytes the firmware sends on UART0/UART1 to FILE
//   --uart-loopback N   connect UART N's TX to its own RX (repeatable)
//   --quiet             no status messages on stderr
//   --log-level N       rp2040js log level (0 debug .. 3 error; default 3)
//
// Status lines go to stderr, prefixed with "[pico-emu]".

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import { Simulator, USBCDC, ConsoleLogger, LogLevel, GPIOPinState } from 'rp2040js';
import { decodeBlock } from 'uf2';
import { bootromB1 } from './bootrom-b1.js';

const here = path.dirname(fileURLToPath(import.meta.url));

// ---- args ----
const args = { uf2: process.env.PICO_UF2 || path.join(here, "..", "..", "shared", "pico", "firmware.uf2"), fs: null,
  fsOffset: 0xa0000, fsSize: 1408 * 1024, quiet: false, logLevel: LogLevel.Error, idleSpeed: 1 };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const next = () => process.argv[++i];
  if (a === '--uf2') args.uf2 = next();
  else if (a === '--fs') args.fs = next();
  else if (a === '--fs-offset') args.fsOffset = Number(next());
  else if (a === '--fs-size') args.fsSize = Number(next());
  else if (a === '--quiet') args.quiet = true;
  else if (a === '--control') args.control = next();
  else if (a === '--uart-log') args.uartLog = next();
  else if (a === '--uart-loopback') (args.uartLoopback ??= []).push(Number(next()));
  else if (a === '--idle-speed') args.idleSpeed = Number(next());
  else if (a === '--log-level') args.logLevel = Number(next());
  else { process.stderr.write(`unknown option ${a}\n`); process.exit(2); }
}
const t0 = process.hrtime.bigint();
const wallMs = () => Number(process.hrtime.bigint() - t0) / 1e6;
const log = (msg) => { if (!args.quiet) process.stderr.write(`[pico-emu] ${(wallMs() / 1000).toFixed(3)}s ${msg}\n`); };

// ---- firmware image (kept across reboots) ----
const FLASH_START = 0x10000000;
const uf2Blocks = [];
{
  const data = fs.readFileSync(args.uf2);
  for (let off = 0; off + 512 <= data.length; off += 512) {
    const b = decodeBlock(new Uint8Array(data.buffer, data.byteOffset + off, 512));
    uf2Blocks.push([b.flashAddress - FLASH_START, Uint8Array.from(b.payload)]);
  }
}
// Flash contents that survive an emulated reboot.
let savedFlash = null;
if (args.fs && fs.existsSync(args.fs)) {
  const img = fs.readFileSync(args.fs);
  savedFlash = new Uint8Array(16 * 1024 * 1024).fill(0xff);
  for (const [addr, payload] of uf2Blocks) savedFlash.set(payload, addr);
  savedFlash.set(img.subarray(0, args.fsSize), args.fsOffset);
  log(`loaded FS image ${args.fs} (${img.length} bytes) at flash+0x${args.fsOffset.toString(16)}`);
}

function saveFs(flash) {
  if (!args.fs) return;
  fs.writeFileSync(args.fs, flash.subarray(args.fsOffset, args.fsOffset + args.fsSize));
  log(`saved FS region to ${args.fs}`);
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
      const addr = r[0] & 0xffffff, count = r[1];
      mcu.flash.fill(0xff, addr, Math.min(addr + count, mcu.flash.length));
      stats.erases++;
      core.PC = core.LR & ~1;
    } else if (code === BKPT_PROGRAM) {
      // void flash_range_program(uint32_t addr, const uint8_t *data, size_t count)
      const addr = r[0] & 0xffffff, data = r[1], count = r[2];
      for (let i = 0; i < count && addr + i < mcu.flash.length; i++) {
        mcu.flash[addr + i] &= mcu.readUint8(data + i);   // NOR flash: program can only clear bits
      }
      stats.programs++;
      core.PC = core.LR & ~1;
    } else {
      log(`BKPT #${code} at PC=0x${((core.PC - 2) >>> 0).toString(16)}; stopping`);
      running = false;
      finish(3);
    }
  };

  const wd = mcu.peripherals[0x40058];
  const prevReason = boot.wdReason ?? 0;
  wd.reason = prevReason;
  wd.onWatchdogTrigger = () => {
    if (rebootRequested) return;
    // Stop the (periodic) watchdog alarm, else it re-fires at once, forever.
    wd.enable = false; wd.alarm.enable = false; wd.timer.enable = false;
    boot.wdReason = wd.reason;   // FORCE (machine.reset) or TIMER (WDT timeout)
    log(`watchdog reset (reason=${wd.reason === 2 ? 'force' : 'timer'})`);
    if (process.env.PICO_EMU_EVENT_FD) {
      try { fs.writeSync(Number(process.env.PICO_EMU_EVENT_FD), 'reset\n'); } catch {}
    }
    savedFlash = Uint8Array.from(mcu.flash);
    saveFs(mcu.flash);
    stats.reboots++;
    rebootRequested = true;
  };

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

  // Pads: input follows own output / pulls / external drive.
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
    pin.resolveInput = () => { const v = resolve(pin.value); if (v !== pin.rawInputValue) pin.setInputValue(v); };
    pin.addListener(() => pin.resolveInput());
    pin.resolveInput();
  }
  mcu.adc.channelValues.splice(0, 5, ...adcValues);

  // PIO: clocked from our main loop instead of its own setTimeout loop.
  for (const p of mcu.pio) {
    p.run = () => {};
    for (const m of p.machines) {
      m.acc = 0; m.stall = 0;
      const restart = m.restart.bind(m);
      m.restart = () => { m.stall = 0; restart(); };       // SM_RESTART clears the delay counter
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

function controlCommand(line) {
  const w = line.trim().split(/\s+/);
  if (w[0] === 'pin' && w.length === 3) {
    const n = Number(w[1]);
    extIn[n] = w[2] === 'z' ? undefined : w[2] === '1';
    mcu.gpio[n].resolveInput();
    return 'ok';
  } else if (w[0] === 'adc' && w.length === 3) {
    adcValues[Number(w[1])] = Number(w[2]);
    mcu.adc.channelValues[Number(w[1])] = Number(w[2]);
    return 'ok';
  } else if (w[0] === 'uart' && w.length >= 2) {
    const text = line.trim().split(/\s+/).slice(2).join(' ') + '\n';
    for (const b of Buffer.from(text)) mcu.uart[Number(w[1])].feedByte(b);
    return 'ok';
  } else if (w[0] === 'stats') {
    return `emulated ${(sim.clock.nanos / 1e9).toFixed(3)}s busy_cycles ${totalCycles} erases ${stats.erases} ` +
      `programs ${stats.programs} reboots ${stats.reboots} in ${stats.bytesIn} out ${stats.bytesOut}`;
  }
  return 'error: unknown command';
}
if (args.control) {
  try { fs.unlinkSync(args.control); } catch {}
  net.createServer((sock) => {
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i); buf = buf.slice(i + 1);
        if (line.trim()) sock.write(controlCommand(line) + '\n');
      }
    });
    sock.on('error', () => {});
  }).listen(args.control);
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
const CYCLE_NS = 1e9 / 125e6;
let totalCycles = 0;
let idleWall0 = null, idleEmu0 = 0;

function stepPIO(cycles) {
  for (const p of mcu.pio) {
    if (p.stopped) continue;
    let stepped = false;
    for (const m of p.machines) {
      if (!m.enabled) continue;
      const div = (m.clockDivInt || 65536) + m.clockDivFrac / 256;
      m.acc += cycles / div;
      while (m.acc >= 1) {
        m.acc -= 1;
        if (m.stall > 0) { m.stall--; continue; }
        const c0 = m.cycles;
        m.step();
        const used = m.cycles - c0;
        m.stall = used > 1 ? used - 1 : 0;
        stepped = true;
      }
    }
    if (stepped) p.checkChangedPins();
  }
}

function run() {
  if (!running) return;
  if (rebootRequested) {
    rebootRequested = false;
    bannerSeen = false;
    idleWall0 = null;
    inQueue = []; inQueued = 0;          // bytes in flight are lost on a real reset too
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
        if (pioActive) next = Math.min(next, clock.nanos + 8000);   // keep PIO running while CPU sleeps
        let allowed = Infinity;
        if (args.idleSpeed > 0) {
          const now = performance.now();
          if (idleWall0 === null) { idleWall0 = now; idleEmu0 = clock.nanos; }
          allowed = idleEmu0 + (now - idleWall0) * 1e6 * args.idleSpeed;
        }
        if (next <= allowed) {
          const dt = next - clock.nanos;
          clock.tick(dt);
          if (pioActive) stepPIO(dt / CYCLE_NS);
          i += 50;
        } else {
          if (allowed !== Infinity && allowed > clock.nanos) {
            const dt = allowed - clock.nanos;
            clock.tick(dt);
            if (pioActive) stepPIO(dt / CYCLE_NS);
          } else if (allowed === Infinity) clock.tick(1e6);   // fast-forward, nothing pending
          throttled = allowed !== Infinity;
          break outer;
        }
      } else {
        idleWall0 = null;
        const cycles = core.executeInstruction();
        const target = clock.nanosCounter + cycles * CYCLE_NS;
        const na = clock.nextAlarm;
        if (na !== null && na.nanos <= target) clock.tick(cycles * CYCLE_NS);   // fire due alarms
        else clock.nanosCounter = target;                                       // fast path
        totalCycles += cycles;
        if (pioActive) stepPIO(cycles);
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
  const simS = sim ? sim.clock.nanos / 1e9 : 0;
  log(`exit: wall ${(wallMs() / 1000).toFixed(1)}s, emulated time this boot ${simS.toFixed(1)}s, ` +
      `${(totalCycles / 1e6).toFixed(1)}M busy cycles (${(totalCycles / 1e3 / wallMs()).toFixed(1)} MHz effective), ` +
      `flash erases ${stats.erases}, programs ${stats.programs}, reboots ${stats.reboots}`);
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

log(`loading ${args.uf2} (${uf2Blocks.length} UF2 blocks)`);
boot('power-on');
running = true;
run();
