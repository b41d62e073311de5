// The control socket (--control PATH): one command per line, one reply line per command
// (pico-emu/README.md has every command and reply). Bad input replies {"error": ...} and
// changes nothing; the emulator never stops because of a command.

import fs from 'node:fs';
import net from 'node:net';
import { emu, nowNs, bootNs } from './state.mjs';
import { fatal, wallMs } from './status.mjs';
import { NPINS, edges, levels, clearPin, pwmState, pwmHistory } from './observe.mjs';
import { requestReboot } from './chip.mjs';
import { restartPacing } from './loop.mjs';

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

// The `stats json` reply; flashStore: the FlashStore (its write-through counters).
function statsJson(flashStore) {
  const wallS = wallMs() / 1000, s = emu.stats, cycles = emu.totalCycles;
  return {
    t_ns: Math.round(nowNs()), boot_ns: Math.round(bootNs()), emulated_s: nowNs() / 1e9, wall_s: wallS,
    busy_cycles: cycles, effective_mhz: cycles / 1e6 / wallS, recent_mhz: emu.recentMhz,
    erases: s.erases, programs: s.programs, reboots: s.reboots, boots: emu.boots,
    bytes_in: s.bytesIn, bytes_out: s.bytesOut, idle_speed: emu.args.idleSpeed,
    fs_writes: flashStore.writes, fs_write_bytes: flashStore.bytes, fs_write_ms: flashStore.ms,
  };
}

// One command line -> one reply line. Throws CommandError for bad input.
function controlCommand(line, flashStore) {
  const mcu = emu.mcu;
  const w = line.trim().split(/\s+/);
  switch (w[0]) {
    case 'pin': {
      arity(w, 3, 'pin N 0|1|z');
      const n = intArg(w, 1, 'a GPIO number', 0, NPINS - 1);
      if (!['0', '1', 'z'].includes(w[2])) throw new CommandError(`pin: the level must be 0, 1 or z, got '${w[2]}'`);
      emu.extIn[n] = w[2] === 'z' ? undefined : w[2] === '1';
      mcu.gpio[n].resolveInput();
      return 'ok';
    }
    case 'adc': {
      arity(w, 3, 'adc CH RAW');
      const ch = intArg(w, 1, 'an ADC channel', 0, 4);
      const raw = intArg(w, 2, 'a raw 12-bit value', 0, 4095);
      emu.adcValues[ch] = raw;
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
      if (w.length === 2 && w[1] === 'json') return JSON.stringify(statsJson(flashStore));
      arity(w, 1, 'stats [json]');
      const s = emu.stats;
      return `emulated ${(bootNs() / 1e9).toFixed(3)}s busy_cycles ${emu.totalCycles} erases ${s.erases} ` +
        `programs ${s.programs} reboots ${s.reboots} in ${s.bytesIn} out ${s.bytesOut}`;
    }
    case 'time':
      arity(w, 1, 'time');
      return JSON.stringify({ t_ns: Math.round(nowNs()), boot_ns: Math.round(bootNs()), boots: emu.boots,
                              last_reset: emu.lastReset });
    case 'levels':
      arity(w, 1, 'levels');
      return JSON.stringify({ t_ns: Math.round(nowNs()), pins: levels() });
    case 'edges':
      arity(w, 2, 'edges N');
      return JSON.stringify(edges(intArg(w, 1, 'a GPIO number', 0, NPINS - 1)));
    case 'clear': {
      if (w.length === 1) {
        for (let n = 0; n < NPINS; n++) clearPin(n);
      } else {
        arity(w, 2, 'clear [N]');
        clearPin(intArg(w, 1, 'a GPIO number', 0, NPINS - 1));
      }
      return JSON.stringify({ ok: true });
    }
    case 'pwm': {
      arity(w, 2, 'pwm N');
      const n = intArg(w, 1, 'a GPIO number', 0, NPINS - 1);
      const s = pwmState(n);
      return JSON.stringify({ pin: n, slice: s.slice, channel: s.channel, enabled: s.enabled, div: s.div, top: s.top,
                              cc: s.cc, freq_hz: s.freq_hz, duty: s.duty, sounding: s.sounding,
                              history: pwmHistory(n) });
    }
    case 'speed': {
      if (w.length === 2) {
        const x = Number(w[1]);
        if (!Number.isFinite(x) || x < 0 || w[1] === '') {
          throw new CommandError(`speed must be a number >= 0 (0 = as fast as possible), got '${w[1]}'`);
        }
        emu.args.idleSpeed = x;
        restartPacing();     // pace from now on at the new speed
      } else arity(w, 1, 'speed [X]');
      return JSON.stringify({ idle_speed: emu.args.idleSpeed });
    }
    case 'reset':
      arity(w, 1, 'reset');
      emu.wdReason = 0;       // the RUN pin resets the watchdog too: REASON reads 0
      requestReboot('run_pin');
      return JSON.stringify({ ok: true });
    default:
      throw new CommandError(`unknown command '${w[0]}' (known: ${KNOWN})`);
  }
}

function controlReply(line, flashStore) {
  try {
    return controlCommand(line, flashStore);
  } catch (e) {
    // Bad input is the client's problem; a bug here must not take the board down either.
    return JSON.stringify({ error: e instanceof CommandError ? e.message : `internal error: ${e.message}` });
  }
}

// Listen on socketPath (replacing a stale socket file); a bind failure is fatal.
export function listenControl(socketPath, flashStore) {
  try { fs.unlinkSync(socketPath); } catch {}
  const server = net.createServer((sock) => {
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i); buf = buf.slice(i + 1);
        if (line.trim()) sock.write(controlReply(line, flashStore) + '\n');
      }
      if (buf.length > 65536) {
        sock.end(JSON.stringify({ error: 'command line longer than 64 KiB' }) + '\n');
        buf = '';
      }
    });
    sock.on('error', () => {});
  });
  server.on('error', (e) => fatal(`cannot listen on the control socket ${socketPath}: ${e.message}`));
  server.listen(socketPath);
}
