# The virtual bench flash: protocol, counters, file backing and power-cut injection.
import os
import vfs
from mptest import eq, raises
from sim.blockdev import BlockDev, PowerCut, mount_lfs, PROGSIZE

_IMG = "/tmp/mp_test_blockdev_%d.img" % os.getpid() if hasattr(os, "getpid") else "/tmp/mp_test_blockdev.img"


def _rm(p):
    try:
        os.remove(p)
    except OSError:
        pass


def test_blank_device_reads_erased_and_counts_nothing():
    d = BlockDev(block_size=4096, block_count=16)
    buf = bytearray(8)
    d.readblocks(3, buf, 100)
    eq(bytes(buf), b"\xff" * 8)
    eq(d.ioctl(4, 0), 16)
    eq(d.ioctl(5, 0), 4096)
    eq((d.stats.ops, d.stats.bytes_written, d.stats.blocks_erased), (0, 0, 0))


def test_write_read_erase_and_counters():
    d = BlockDev(block_count=16)
    d.ioctl(6, 2)
    d.writeblocks(2, b"abcd", 10)
    buf = bytearray(6)
    d.readblocks(2, buf, 9)
    eq(bytes(buf), b"\xffabcd\xff")
    eq((d.stats.ops, d.stats.writes, d.stats.bytes_written, d.stats.blocks_erased), (2, 1, 4, 1))
    # simple protocol form (no offset) erases first, like the Pico driver
    d.writeblocks(5, bytes(4096))
    eq((d.stats.ops, d.stats.blocks_erased, d.stats.bytes_written), (4, 2, 4100))
    d.ioctl(6, 2)
    d.readblocks(2, buf, 9)
    eq(bytes(buf), b"\xff" * 6)


def test_cut_at_nth_op_keeps_earlier_writes_and_kills_device():
    d = BlockDev(block_count=16)
    d.fail_at(3)
    d.writeblocks(1, b"one", 0)
    d.writeblocks(1, b"two", 3)
    eq(d.dead(), False)
    eq(d.writeblocks(1, b"three", 6), -5)  # the cut: littlefs sees an I/O error
    eq(d.dead(), True)
    eq(d.stats.cuts, 1)
    # dead until power-on: littlefs gets -EIO and nothing changes
    eq(d.readblocks(1, bytearray(4), 0), -5)
    eq(d.writeblocks(1, b"x", 20), -5)
    eq(d.ioctl(6, 1), -5)
    d2 = d.reboot()
    buf = bytearray(12)
    d2.readblocks(1, buf, 0)
    eq(bytes(buf), b"onetwo" + b"\xff" * 6)
    eq(d.writeblocks(1, b"zz", 0), -5)  # the old one stays dead
    eq(d2.stats.writes, 2)
    d2.readblocks(1, buf, 0)
    eq(bytes(buf), b"onetwo" + b"\xff" * 6)
    d2.writeblocks(1, b"ok", 30)
    eq(d2.stats.writes, 3)  # counters are shared across power-ons


def test_torn_write_lands_first_half_only():
    d = BlockDev(block_count=16)
    d.fail_at(1, torn=True)
    eq(d.writeblocks(0, b"ABCDEFGH", 0), -5)
    d = d.reboot()
    buf = bytearray(8)
    d.readblocks(0, buf, 0)
    eq(bytes(buf), b"ABCD\xff\xff\xff\xff")
    eq((d.stats.cuts, d.stats.torn), (1, 1))


def test_torn_erase_leaves_half_block_unerased():
    d = BlockDev(block_count=16)
    d.writeblocks(4, b"\x00" * 4096, 0)
    d.fail_at(1, torn=True)
    eq(d.ioctl(6, 4), -5)
    d = d.reboot()
    a = bytearray(1)
    d.readblocks(4, a, 0)
    eq(a[0], 0xFF)
    d.readblocks(4, a, 4095)
    eq(a[0], 0x00)


def test_run_raises_powercut_only_when_power_went():
    d = BlockDev(block_count=32)
    mount_lfs(d, "/bdr")

    def save(data):
        with open("/bdr/s", "wb") as f:
            f.write(data)
        return len(data)
    eq(d.run(save, b"x" * 700), 700)  # no cut: plain result
    e = raises(ValueError, d.run, int, "zz")  # no cut: errors pass through unchanged
    d.fail_at(2)
    e = raises(PowerCut, d.run, save, b"y" * 700)
    eq("OSError" in str(e), True)

    def swallow():
        try:
            save(b"z" * 700)
        except OSError:
            pass
    d = d.reboot()
    eq(mount_lfs(d, "/bdr"), False)
    eq(open("/bdr/s", "rb").read(), b"x" * 700)
    d.fail_at(1)
    raises(PowerCut, d.run, swallow)
    vfs.umount("/bdr")


def test_powercut_is_not_an_exception_subclass():
    try:
        try:
            raise PowerCut("x")
        except Exception:
            raise AssertionError("except Exception swallowed PowerCut")
    except PowerCut:
        pass


def test_bad_arguments_refused():
    raises(ValueError, BlockDev, 1000, 16)
    raises(ValueError, BlockDev, 4096, 2)
    d = BlockDev(block_count=8)
    raises(ValueError, d.fail_at, 0)
    raises(ValueError, d.fail_at, "3")
    raises(OSError, d.writeblocks, 8, b"x", 0)
    raises(OSError, d.readblocks, 7, bytearray(2), 4095)
    raises(ValueError, d.restore, b"short")
    eq(d.stats.ops, 0)


def test_mount_formats_blank_then_mounts_existing():
    d = BlockDev(block_count=32)
    eq(mount_lfs(d, "/bdt"), True)
    with open("/bdt/f", "w") as f:
        f.write("kept")
    eq(mount_lfs(d, "/bdt"), False)  # remount: no format, file still there
    eq(open("/bdt/f").read(), "kept")
    st = os.statvfs("/bdt")
    eq((st[0], st[2]), (4096, 32))
    vfs.umount("/bdt")


def test_mount_formats_garbage_image():
    d = BlockDev(block_count=16)
    d.restore(b"\x5a" * (16 * 4096))
    eq(mount_lfs(d, "/bdg"), True)
    eq(os.listdir("/bdg"), [])
    vfs.umount("/bdg")


def test_file_backed_image_survives_restart():
    _rm(_IMG)
    d = BlockDev(block_count=16, path=_IMG)
    eq(mount_lfs(d, "/bdf"), True)
    with open("/bdf/prog", "w") as f:
        f.write("500ug/day")
    vfs.umount("/bdf")
    d.close()
    eq(os.stat(_IMG)[6], 16 * 4096)
    d = BlockDev(block_count=16, path=_IMG)  # a new process would do exactly this
    eq(mount_lfs(d, "/bdf"), False)
    eq(open("/bdf/prog").read(), "500ug/day")
    vfs.umount("/bdf")
    d.close()
    e = raises(ValueError, BlockDev, 4096, 32, _IMG)  # wrong geometry for the image
    eq("expected" in str(e), True)
    _rm(_IMG)


def test_file_backing_gets_writes_before_the_cut():
    _rm(_IMG)
    d = BlockDev(block_count=16, path=_IMG)
    d.writeblocks(3, b"first", 0)
    d.fail_at(1, torn=True)
    eq(d.writeblocks(3, b"12345678", 8), -5)
    d.close()
    with open(_IMG, "rb") as f:
        f.seek(3 * 4096)
        eq(f.read(16), b"first\xff\xff\xff1234\xff\xff\xff\xff")
    _rm(_IMG)


def test_stale_open_file_after_cut_never_touches_the_new_image():
    # A cut inside a littlefs write leaves that file open; closing it (or its GC finaliser)
    # later must neither raise PowerCut again nor change the image the next boot mounts.
    import gc
    d = BlockDev(block_count=32)
    mount_lfs(d, "/bds")
    with open("/bds/a", "wb") as f:
        f.write(b"old" * 300)
    f = open("/bds/a", "wb")
    d.fail_at(1)

    def write():
        f.write(b"new" * 300)
        f.close()
    raises(PowerCut, d.run, write)
    d = d.reboot()
    eq(mount_lfs(d, "/bds"), False)
    img = d.image()
    ops = d.stats.ops
    try:
        f.close()
    except OSError as e:
        eq(e.args[0], 5)
    f = None
    gc.collect()
    eq(d.stats.ops, ops)
    eq(d.image() == img, True)
    eq(open("/bds/a", "rb").read(), b"old" * 300)
    vfs.umount("/bds")


def test_progsize_matches_pico():
    eq(PROGSIZE, 256)


def test_erase_counts_per_block():
    d = BlockDev(block_count=8)
    d.ioctl(6, 3)
    d.ioctl(6, 3)
    d.ioctl(6, 7)
    eq(list(d.stats.erase_counts), [0, 0, 0, 2, 0, 0, 0, 1])
    d = d.reboot()
    d.ioctl(6, 0)
    eq(d.stats.erase_counts[0], 1)
