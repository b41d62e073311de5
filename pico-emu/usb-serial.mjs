// The USB CDC serial port as raw bytes: host -> device from stdin through an unbounded queue
// (stock USBCDC drops more than 512 queued bytes), OUT
// transfers deferred until the host has data (a real host NAKs; stock answers every OUT poll
// with a zero-length packet); device -> host to stdout.

import { emu, bootNs } from './state.mjs';
import { log } from './status.mjs';

let inQueue = [];      // Buffers from stdin, not yet taken by the device
let inQueued = 0;
let cdc = null, pendingRead = null, connected = false, bannerSeen = false;

export const isConnected = () => connected;

// Bytes from the host (stdin).
export function hostBytes(chunk) {
  emu.stats.bytesIn += chunk.length;
  inQueue.push(chunk);
  inQueued += chunk.length;
  pump();
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
  emu.mcu.usbCtrl.endpointReadDone(endpoint, out);
}

// A chip reset: bytes in flight are lost on a real reset too.
export function dropQueued() { inQueue = []; inQueued = 0; }

// A new boot's USB device.
export function attachCdc(mcu, reason) {
  cdc = new emu.lib.USBCDC(mcu.usbCtrl);
  pendingRead = null;
  connected = false;
  bannerSeen = false;
  cdc.onDeviceConnected = () => {
    connected = true;
    log(`USB CDC configured (${reason})`);
    pump();
  };
  mcu.usbCtrl.onEndpointRead = (endpoint, size) => {
    if (endpoint !== cdc.outEndpoint) return;
    pendingRead = { endpoint, size };
    pump();
  };
  let lineBuf = '';
  cdc.onSerialData = (buf) => {
    emu.stats.bytesOut += buf.length;
    process.stdout.write(Buffer.from(buf));
    if (!bannerSeen) {
      lineBuf += Buffer.from(buf).toString('latin1');
      if (lineBuf.includes('MicroPython v') && lineBuf.includes('>>> ')) {
        bannerSeen = true;
        log(`REPL banner seen (emulated t=${(bootNs() / 1e6).toFixed(1)} ms): ${lineBuf.match(/MicroPython v[^\r\n]*/)[0]}`);
      }
    }
  };
}
