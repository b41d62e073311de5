// The chip's flash: the UF2 it is loaded from, the --fs image file that holds the MicroPython
// filesystem region (write-through), and the boot ROM's erase/program routines trapped so
// that littlefs can write.

import fs from 'node:fs';
import path from 'node:path';
import { emu } from './state.mjs';
import { defaultUf2 } from './options.mjs';
import { fatal, log } from './status.mjs';

const FLASH_START = 0x10000000;
const FLASH_SIZE = 16 * 1024 * 1024;

// The UF2's flash blocks as [offset, payload] (kept: every reboot without --fs starts from them).
export function loadUf2(uf2, decodeBlock) {
  if (!fs.existsSync(uf2)) {
    const from = process.env.PICO_UF2 === uf2 ? 'given by PICO_UF2' : uf2 === defaultUf2
      ? 'the default: ../shared/pico/firmware.uf2 beside the repository' : 'given by --uf2';
    fatal(`no firmware image at ${path.resolve(uf2)} (${from}): set PICO_UF2 (or --uf2) to the official ` +
          'MicroPython v1.28.0 RPI_PICO UF2 from https://micropython.org/download/RPI_PICO/');
  }
  let data;
  try { data = fs.readFileSync(uf2); } catch (e) { fatal(`cannot read the firmware image ${uf2}: ${e.message}`); }
  const blocks = [];
  for (let off = 0; off + 512 <= data.length; off += 512) {
    let b;
    try { b = decodeBlock(new Uint8Array(data.buffer, data.byteOffset + off, 512)); } catch (e) {
      fatal(`${uf2} is not a UF2 image (block at byte ${off}: ${e.message})`);
    }
    const addr = b.flashAddress - FLASH_START;
    if (addr < 0 || addr + b.payload.length > FLASH_SIZE) continue;   // not for the flash (e.g. RAM)
    blocks.push([addr, Uint8Array.from(b.payload)]);
  }
  if (!blocks.length) fatal(`${uf2} holds no RP2040 flash blocks: is it a UF2 for the Raspberry Pi Pico?`);
  return blocks;
}

function flashFromUf2(blocks) {
  const f = new Uint8Array(FLASH_SIZE).fill(0xff);
  for (const [addr, payload] of blocks) f.set(payload, addr);
  return f;
}

// The chip's flash as it stands between boots, and the --fs file that mirrors its FS region.
export class FlashStore {
  constructor(args, uf2Blocks) {
    this.uf2Blocks = uf2Blocks;
    this.file = args.fs;
    this.offset = args.fsOffset;
    this.size = args.fsSize;
    this.fd = null;
    this.saved = null;      // flash contents that survive a reboot (null: the UF2 alone)
    this.writes = 0; this.bytes = 0; this.ms = 0;
    if (this.file) this.open();
  }

  open() {
    const existed = fs.existsSync(this.file);
    try {
      this.fd = fs.openSync(this.file, existed ? 'r+' : 'w+');
    } catch (e) { fatal(`cannot open the flash image ${this.file}: ${e.message}`); }
    this.saved = flashFromUf2(this.uf2Blocks);
    const size = fs.fstatSync(this.fd).size;
    if (size > 0) {
      const img = Buffer.alloc(Math.min(size, this.size));
      fs.readSync(this.fd, img, 0, img.length, 0);
      this.saved.set(img, this.offset);
    }
    if (size < this.size) {
      // A new (or short) image: fill the rest of the region with what the chip's flash holds
      // there (0xff, erased, unless the UF2 carries a filesystem), so offsets past the old end
      // never read as the zeros of a sparse file.
      const tail = this.saved.subarray(this.offset + size, this.offset + this.size);
      fs.writeSync(this.fd, tail, 0, tail.length, size);
    }
    log(existed ? `loaded FS image ${this.file} (${size} bytes) at flash+0x${this.offset.toString(16)}`
                : `created FS image ${this.file} (${this.size} bytes, erased)`);
  }

  // Fill a new boot's flash (the chip's flash is 0xff after loadBootrom).
  load(flash) {
    if (this.saved) flash.set(this.saved);
    else for (const [addr, payload] of this.uf2Blocks) flash.set(payload, addr);
  }

  // A chip reset keeps the flash: remember it and save the whole region.
  keep(flash) {
    this.saved = Uint8Array.from(flash);
    this.save(flash);
  }

  // Whole region, at exit and on chip reset (the write-through already keeps the file current).
  save(flash) {
    if (this.fd === null) return;
    fs.writeSync(this.fd, flash, this.offset, this.size, 0);
    log(`saved FS region to ${this.file}`);
  }

  close() {
    if (this.fd !== null) fs.closeSync(this.fd);
  }

  // Apply flash bytes [addr, addr+len) to the image file, if they fall in the FS region:
  // one positioned write of just those bytes, so a SIGKILL at any moment leaves the file
  // as the chip's flash was after the last completed erase/program.
  writeThrough(flash, addr, len) {
    if (this.fd === null) return;
    const lo = Math.max(addr, this.offset), hi = Math.min(addr + len, this.offset + this.size);
    if (hi <= lo) return;
    const w0 = performance.now();
    fs.writeSync(this.fd, flash, lo, hi - lo, lo - this.offset);
    this.ms += performance.now() - w0;
    this.writes++;
    this.bytes += hi - lo;
  }
}

// ---- the boot ROM's flash routines, trapped ----
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

// BKPT patched into the ROM copy's flash_range_erase/flash_range_program; the breakpoint
// applies them to mcu.flash (and the --fs file) and returns. Any other BKPT stops the emulator.
export function trapFlashWrites(mcu, store) {
  patchHalfword(mcu.bootrom, romFuncAddr(mcu.bootrom, 'R', 'E'), 0xbe00 | BKPT_ERASE);
  patchHalfword(mcu.bootrom, romFuncAddr(mcu.bootrom, 'R', 'P'), 0xbe00 | BKPT_PROGRAM);
  mcu.onBreak = (code) => {
    const core = mcu.core;
    const r = core.registers;
    if (code === BKPT_ERASE) {
      // void flash_range_erase(uint32_t addr, size_t count, uint32_t block_size, uint8_t block_cmd)
      const addr = r[0] & 0xffffff, end = Math.min(addr + r[1], mcu.flash.length);
      mcu.flash.fill(0xff, addr, end);
      store.writeThrough(mcu.flash, addr, end - addr);
      emu.stats.erases++;
      core.PC = core.LR & ~1;
    } else if (code === BKPT_PROGRAM) {
      // void flash_range_program(uint32_t addr, const uint8_t *data, size_t count)
      const addr = r[0] & 0xffffff, data = r[1], count = r[2];
      let i = 0;
      for (; i < count && addr + i < mcu.flash.length; i++) {
        mcu.flash[addr + i] &= mcu.readUint8(data + i);   // NOR flash: program can only clear bits
      }
      store.writeThrough(mcu.flash, addr, i);
      emu.stats.programs++;
      core.PC = core.LR & ~1;
    } else {
      log(`BKPT #${code} at PC=0x${((core.PC - 2) >>> 0).toString(16)}; stopping`);
      emu.running = false;
      emu.finish(3);
    }
  };
}
