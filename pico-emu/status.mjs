// Status lines and the one-sentence error exit every other module of the emulator uses.
// Nothing newer than Node 14 here: pico-emu.mjs imports this before it checks the version.

const t0 = process.hrtime.bigint();
let quiet = false;

export const wallMs = () => Number(process.hrtime.bigint() - t0) / 1e6;

export function setQuiet(q) { quiet = q; }

export function log(msg) {
  if (!quiet) process.stderr.write(`[pico-emu] ${(wallMs() / 1000).toFixed(3)}s ${msg}\n`);
}

// One clear sentence on stderr, then exit (status 2: could not start).
export function fatal(msg) {
  process.stderr.write(`[pico-emu] error: ${msg}\n`);
  process.exit(2);
}
