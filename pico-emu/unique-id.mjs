// The flash chip's 64-bit unique ID: where it comes from (--unique-id, FILE.uid beside the
// --fs image, else zeros) and the SSI model that answers the SDK's 0x4B command with it.

import fs from 'node:fs';
import crypto from 'node:crypto';
import { fatal } from './status.mjs';

// { id: 8-byte Buffer, from: a phrase for the status line }
export function loadUniqueId(args) {
  if (args.uniqueId) return { id: Buffer.from(args.uniqueId, 'hex'), from: '--unique-id' };
  if (!args.fs) return { id: Buffer.alloc(8), from: 'none: all zeros' };   // stock rp2040js: zeros
  const uidFile = args.fs + '.uid';
  if (fs.existsSync(uidFile)) {
    const raw = fs.readFileSync(uidFile);
    const text = raw.toString('latin1').trim();
    if (/^[0-9a-fA-F]{16}$/.test(text)) return { id: Buffer.from(text, 'hex'), from: uidFile };
    if (raw.length === 8) return { id: raw, from: uidFile };          // 8 raw bytes are accepted too
    fatal(`${uidFile} should hold the board's unique ID as 16 hex digits; it holds ${JSON.stringify(text.slice(0, 40))}`);
  }
  // One flash image = one board: its identity is made once and kept beside the image.
  const id = crypto.randomBytes(8);
  fs.writeFileSync(uidFile, id.toString('hex').toUpperCase() + '\n');
  return { id, from: `${uidFile} (new)` };
}

// The SDK's flash_get_unique_id() (run at boot by pico_unique_id, read by machine.unique_id())
// forces QSPI CS low through IO_QSPI, then sends 0x4B, 4 dummy bytes and 8 more bytes through
// SSI DR0, reading one byte back per byte sent. Model: each DR0 write pushes one response byte
// into a 16-entry RX FIFO, each DR0 read pops one (0 when empty, as stock). The first byte after
// CS goes low (or after the SSI is re-enabled, which also empties its FIFOs) is the command:
// 0x4B answers 0 then 4 zero dummies then the ID; every other command answers zeros, as stock
// (so status polls read "not busy").
export function installUniqueId(mcu, uniqueId) {
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
