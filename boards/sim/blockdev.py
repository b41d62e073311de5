# Virtual bench flash: a littlefs block device held in RAM, optionally backed by an image
# file, with wear counters and power-cut injection.
# (What it shares with the bench's file-backed device, FileBlockDev, is boards/sim/flashfile.py.)
#
# Power cuts: `fail_at(n)` arms a cut at the n-th flash operation from now. Operations are
# programs (writeblocks) and erases (ioctl 6), counted together because real flash can lose
# power during either. At the cut nothing of that operation happens (mode "cut") or only the
# first half of its bytes land (mode "torn"; a torn erase leaves the first half erased).
# Every earlier operation is intact. From the cut on the device is dead: that operation and
# every later access return -EIO to littlefs and change nothing. `run(fn, ...)` calls fn and
# raises PowerCut if the power went during it, whatever fn raised or swallowed (usually
# OSError EIO from littlefs). `reboot()` hands back a new, live device on the same image, as
# a power-on would.
#
# Why the cut is not raised from inside writeblocks: an exception there unwinds straight
# through littlefs's C code, leaving the file being written open and dirty; its GC finaliser
# later retries the sync (printing errors from inside the GC), and a `finally: f.close()`
# in the code that was cut turns the PowerCut into an OSError anyway. Reporting an I/O error
# lets littlefs take its own error path: the file is marked failed and closes without
# writing, so nothing stale is left behind.
from micropython import const

# mount_lfs, PROGSIZE and FileBlockDev are imported from here by the tests.
from sim.flashfile import FlashStats, answer_ioctl, mount_lfs, PROGSIZE, FileBlockDev  # noqa: F401

_EIO = const(-5)  # what a block device returns to littlefs for an I/O error


class PowerCut(BaseException):
    """Power was lost. A BaseException so that firmware `except Exception` cannot eat it."""


class BlockDev:
    def __init__(self, block_size=4096, block_count=352, path=None, _share=None):
        if _share is not None:
            # A power-on of an existing image (see reboot()).
            self.block_size, self.block_count, self._buf, self._file, self.stats = _share
            self._erased_block = memoryview(b"\xff" * self.block_size)
        else:
            if block_size < 128 or block_size & (block_size - 1):
                raise ValueError("block_size must be a power of two >= 128, got %r" % (block_size,))
            if block_count < 8:
                raise ValueError("block_count must be >= 8, got %r" % (block_count,))
            self.block_size = block_size
            self.block_count = block_count
            self._erased_block = memoryview(b"\xff" * block_size)
            n = block_size * block_count
            # bytearray(n) then fill: bytearray(b"\xff" * n) would need twice the heap.
            self._buf = bytearray(n)
            self._file = None
            self.stats = FlashStats(block_count)
            if path is not None:
                self._open_image(path, n)
            else:
                self._fill(0, n)
        self._mv = memoryview(self._buf)
        self._dead = False
        self._fail_at = 0  # absolute op number that fails; 0 = disarmed
        self._fail_torn = False

    # ---- image file backing -------------------------------------------------------------
    def _open_image(self, path, n):
        try:
            f = open(path, "r+b")
        except OSError:
            f = None
        if f is not None:
            got = f.readinto(self._buf)
            if got != n:
                f.close()
                raise ValueError("flash image %s holds %d bytes, expected %d (block_size*block_count)"
                                 % (path, got or 0, n))
        else:
            f = open(path, "w+b")
            self._fill(0, n)
            f.write(self._buf)
        self._file = f

    def _write_through(self, addr, n):
        # Write-through so a killed bench process keeps every completed flash operation (the
        # file is unbuffered; no fsync, which only a host crash would need).
        f = self._file
        if f is not None:
            f.seek(addr)
            f.write(self._mv[addr:addr + n])

    def _fill(self, addr, n):
        # Erased flash reads 0xFF. Fill a block at a time from one constant (no byte loop).
        ff = self._erased_block
        bs = self.block_size
        mv = memoryview(self._buf)
        end = addr + n
        while addr < end:
            k = min(bs, end - addr)
            mv[addr:addr + k] = ff[:k]
            addr += k

    # ---- fault injection ----------------------------------------------------------------
    def fail_at(self, n, torn=False):
        """Arm a power cut at the n-th flash operation (program or erase) from now, n >= 1.
        torn=True lets the first half of that operation land."""
        if not isinstance(n, int) or n < 1:
            raise ValueError("fail_at needs an int n >= 1, got %r" % (n,))
        self._fail_at = self.stats.ops + n
        self._fail_torn = bool(torn)

    def disarm(self):
        self._fail_at = 0

    def armed(self):
        return self._fail_at != 0

    def dead(self):
        return self._dead

    def reboot(self):
        """Power on again: a new live device on the same image and counters. This object
        stays dead, so littlefs objects from before the cut can never write again."""
        self._dead = True
        return BlockDev(_share=(self.block_size, self.block_count, self._buf, self._file, self.stats))

    def close(self):
        self._dead = True
        if self._file is not None:
            self._file.close()
            self._file = None

    def image(self):
        """A copy of the whole image (for snapshots in tests)."""
        return bytes(self._buf)

    def restore(self, data):
        """Overwrite the whole image (snapshot restore); counters unchanged."""
        if len(data) != len(self._buf):
            raise ValueError("image size %d != device size %d" % (len(data), len(self._buf)))
        self._mv[:] = data
        self._write_through(0, len(self._buf))

    def run(self, fn, *args, **kw):
        """Call fn(*args, **kw) and return its result; raise PowerCut if the power was cut
        during the call (replacing whatever error fn raised, or none if fn swallowed it)."""
        try:
            r = fn(*args, **kw)
        except Exception as e:
            if self._dead:
                raise PowerCut("power cut at flash op %d (%s: %s)" % (self.stats.ops, type(e).__name__, e))
            raise
        if self._dead:
            raise PowerCut("power cut at flash op %d (error swallowed)" % self.stats.ops)
        return r

    def _op(self):
        # Called before each program/erase. Returns True when this op is the one that fails.
        st = self.stats
        st.ops += 1
        return bool(self._fail_at) and st.ops >= self._fail_at

    def _cut(self):
        self._dead = True
        self._fail_at = 0
        self.stats.cuts += 1
        if self._fail_torn:
            self.stats.torn += 1
        return _EIO

    # ---- block device protocol ----------------------------------------------------------
    def readblocks(self, block, buf, offset=0):
        if self._dead:
            return _EIO
        addr = block * self.block_size + offset
        n = len(buf)
        if block < 0 or addr + n > len(self._buf):
            raise OSError(5)  # EIO: littlefs never asks for this; a bug if it does
        buf[:] = self._mv[addr:addr + n]
        self.stats.bytes_read += n

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            # Simple protocol form: erase the blocks first, as the Pico's driver does.
            offset = 0
            nblk = (len(buf) + self.block_size - 1) // self.block_size
            for i in range(nblk):
                self.erase_block(block + i)
        addr = block * self.block_size + offset
        n = len(buf)
        if block < 0 or addr + n > len(self._buf):
            raise OSError(5)
        if self._dead:
            return _EIO
        fail = self._op()
        if fail:
            if self._fail_torn:
                h = n // 2
                self._mv[addr:addr + h] = buf[:h]
                self._write_through(addr, h)
                self.stats.bytes_written += h
            return self._cut()
        self._mv[addr:addr + n] = buf
        self._write_through(addr, n)
        st = self.stats
        st.writes += 1
        st.bytes_written += n

    def erase_block(self, block):
        if block < 0 or block >= self.block_count:
            raise OSError(5)
        addr = block * self.block_size
        n = self.block_size
        if self._dead:
            return _EIO
        fail = self._op()
        if fail:
            if self._fail_torn:
                self._fill(addr, n // 2)
                self._write_through(addr, n // 2)
            return self._cut()
        self._fill(addr, n)
        self._write_through(addr, n)
        self.stats.blocks_erased += 1
        self.stats.erase_counts[block] += 1

    def ioctl(self, op, arg):
        return answer_ioctl(self, op, arg)
