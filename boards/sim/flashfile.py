# What both of the bench's flash devices share: the littlefs block device protocol's ioctl
# answers, the Pico's geometry, wear counters, and mounting; and the device the running bench
# uses, FileBlockDev, kept in a file. boards/sim/blockdev.py holds the RAM device with power-cut
# injection that the tests use.
#
# Both speak MicroPython's extended block device protocol (readblocks/writeblocks with an
# offset, ioctl 6 = erase), which is what littlefs (vfs.VfsLfs2) drives on the Pico too.
# Geometry defaults to the Pico's: 4096-byte erase blocks, 352 of them (1408 KiB), and the
# filesystem is made with progsize=256 like ports/rp2 does, so write sizes and inline-file
# limits match the board.
import vfs
from array import array

from micropython import const

_IOCTL_INIT = const(1)
_IOCTL_DEINIT = const(2)
_IOCTL_SYNC = const(3)
_IOCTL_BLOCK_COUNT = const(4)
_IOCTL_BLOCK_SIZE = const(5)
_IOCTL_ERASE = const(6)

PROGSIZE = const(256)  # the RP2040 flash page; ports/rp2 formats littlefs with it


class FlashStats:
    """Wear and traffic counters. Shared by every power-on of one image, so totals survive
    BlockDev.reboot()."""

    def __init__(self, block_count):
        self.erase_counts = array("I", bytes(4 * block_count))  # per block: wear levelling
        self.ops = 0  # programs + erases
        self.writes = 0
        self.bytes_written = 0
        self.blocks_erased = 0
        self.bytes_read = 0
        self.cuts = 0
        self.torn = 0


def answer_ioctl(dev, op, arg):
    """A block device's ioctl(op, arg), the same for both devices; an erase is
    dev.erase_block(arg), which may return an error code for littlefs."""
    if op == _IOCTL_BLOCK_COUNT:
        return dev.block_count
    if op == _IOCTL_BLOCK_SIZE:
        return dev.block_size
    if op == _IOCTL_ERASE:
        return dev.erase_block(arg) or 0
    if op in (_IOCTL_INIT, _IOCTL_DEINIT, _IOCTL_SYNC):
        return 0
    return None


def mount_lfs(bdev, mountpoint):
    """Mount bdev's littlefs at mountpoint, formatting it first when it holds no mountable
    filesystem (blank or unformattable). Anything already mounted there is unmounted.
    Returns True if it formatted (the caller should log that: all stored data is gone)."""
    try:
        vfs.umount(mountpoint)
    except OSError:
        pass
    formatted = False
    try:
        fs = vfs.VfsLfs2(bdev, progsize=PROGSIZE)
    except OSError:
        vfs.VfsLfs2.mkfs(bdev, progsize=PROGSIZE)
        fs = vfs.VfsLfs2(bdev, progsize=PROGSIZE)
        formatted = True
    vfs.mount(fs, mountpoint)
    return formatted


class FileBlockDev:
    """The bench's flash: the same littlefs block protocol, kept in a file and never in RAM
    (the bench runs at a Pico's heap size, and a 1.4 MB copy would not fit). Counts bytes
    written and blocks erased for the flash-wear figures."""

    def __init__(self, path, block_size=4096, block_count=352):
        self.block_size = block_size
        self.block_count = block_count
        n = block_size * block_count
        try:
            f = open(path, "r+b")
            f.seek(0, 2)
            size = f.tell()
        except OSError:
            f = open(path, "w+b")
            size = 0
        if size == 0:
            ff = b"\xff" * block_size
            for _ in range(block_count):
                f.write(ff)
            f.flush()
        elif size != n:
            f.close()
            raise ValueError("flash image %s holds %d bytes, expected %d" % (path, size, n))
        self._f = f
        self._erased_block = b"\xff" * block_size
        self.stats = FlashStats(block_count)

    def readblocks(self, block, buf, offset=0):
        self._f.seek(block * self.block_size + offset)
        self._f.readinto(buf)
        self.stats.bytes_read += len(buf)

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            offset = 0
            for i in range((len(buf) + self.block_size - 1) // self.block_size):
                self.erase_block(block + i)
        self._f.seek(block * self.block_size + offset)
        # MicroPython's files are unbuffered: the write reaches the OS at once, so a killed
        # bench keeps every completed flash operation. No flush(): on the unix port it is an
        # fsync (3 ms on this machine, 24 a day of history alone), which only a host crash needs.
        self._f.write(buf)
        self.stats.writes += 1
        self.stats.bytes_written += len(buf)

    def erase_block(self, block):
        if block < 0 or block >= self.block_count:
            raise OSError(5)
        self._f.seek(block * self.block_size)
        self._f.write(self._erased_block)  # unbuffered, as writeblocks
        self.stats.blocks_erased += 1
        self.stats.erase_counts[block] += 1

    def ioctl(self, op, arg):
        return answer_ioctl(self, op, arg)
