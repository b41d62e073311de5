// What the control socket observes of the pins: every GPIO pad's level and its edges (with
// emulated timestamps), and each pin's PWM output with a history of frequency/duty changes.
// Also the pad model that makes those levels: a GPIO's input follows its own output when
// driven, else its pull, else what the control socket drives (stock rp2040js inputs only
// change when the embedding app sets them).

import { emu, nowNs } from './state.mjs';

export const NPINS = 30;
const RING = 512;
const FUNC_NAMES = { 0: 'f0', 1: 'spi', 2: 'uart', 3: 'i2c', 4: 'pwm', 5: 'sio', 6: 'pio0', 7: 'pio1', 8: 'clock', 9: 'usb', 31: 'null' };

// ---- pad levels and edges (kept across chip resets: a reset that drops a pin is an edge) ----
function newTrack() {
  return { level: null, rising: 0, falling: 0, n: 0, t: new Float64Array(RING), lv: new Uint8Array(RING) };
}
const tracks = Array.from({ length: NPINS }, newTrack);
const pwmTracks = Array.from({ length: NPINS }, () => ({ key: null, hist: [] }));

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

// The `edges N` reply.
export function edges(n) {
  const tr = tracks[n];
  return { pin: n, level: tr.level ?? padLevel(emu.mcu.gpio[n]), rising: tr.rising, falling: tr.falling,
           recent: recent(tr) };
}

// The `levels` reply's pins.
export function levels() {
  const pins = {};
  for (const pin of emu.mcu.gpio) {
    pins[pin.index] = { func: FUNC_NAMES[pin.functionSelect] ?? `f${pin.functionSelect}`, oe: pin.outputEnable,
                        out: pin.outputValue ? 1 : 0, in: pin.rawInputValue ? 1 : 0 };
  }
  return pins;
}

// `clear N`: zero GPIO n's edge counters and history and its PWM history.
export function clearPin(n) {
  const tr = tracks[n];
  tr.rising = 0; tr.falling = 0; tr.n = 0;
  pwmTracks[n].hist = [];
}

// Pads: input follows own output / pulls / external drive (emu.extIn); every change of the
// pad's level is counted, whatever caused it (SIO, PIO, PWM, a pull, the socket).
export function installPads(mcu) {
  const { GPIOPinState } = emu.lib;
  const extIn = emu.extIn;
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
}

// ---- PWM output of every GPIO ----
const CSR_EN = 1, CSR_PH_CORRECT = 2, CSR_A_INV = 4, CSR_B_INV = 8;

// GPIO n's PWM channel as its registers were last written (the `pwm N` reply, less history).
export function pwmState(n) {
  const mcu = emu.mcu;
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

export const pwmHistory = (n) => pwmTracks[n].hist;

// History entries are [t_ns, freq_hz, duty] with duty = what the pad outputs (0 while not
// sounding), recorded when that or the frequency changes while the pin is on PWM, and when
// the pin leaves PWM.
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

// PWM history: re-evaluated when the firmware writes the PWM registers (DIV/TOP/CC/CSR/EN)
// or IO_BANK0 (a pin's function select).
export function installPwmWatch(mcu) {
  for (const per of [mcu.pwm, mcu.peripherals[0x40014]]) {
    const write = per.writeUint32.bind(per);
    per.writeUint32 = (offset, value) => { write(offset, value); noteAllPwm(); };
  }
  noteAllPwm();
}
