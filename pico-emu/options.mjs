// The emulator's command line (pico-emu/README.md has the full table):
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
//   --control PATH      listen on a Unix socket for line commands (control.mjs)
//   --uart-log FILE     append bytes the firmware sends on UART0/UART1 to FILE
//   --uart-loopback N   connect UART N's TX to its own RX (repeatable)
//   --quiet             no status messages on stderr (errors still go there)
//   --log-level N       rp2040js log level (0 debug .. 3 error; default 3)
// Nothing newer than Node 14 here: pico-emu.mjs imports this before it checks the version.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fatal } from './status.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const defaultUf2 = path.join(here, '..', '..', 'shared', 'pico', 'firmware.uf2');
const LOG_LEVEL_ERROR = 3;   // rp2040js LogLevel.Error

// argv as process.argv.slice(2); a bad option is fatal (one sentence, exit 2).
export function parseArgs(argv) {
  const args = { uf2: process.env.PICO_UF2 || defaultUf2, fs: null,
    fsOffset: 0xa0000, fsSize: 1408 * 1024, quiet: false, logLevel: LOG_LEVEL_ERROR, idleSpeed: 1,
    uniqueId: null, uartLoopback: [] };
  for (let i = 0; i < argv.length; i++) {
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
  return args;
}
