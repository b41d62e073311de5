# The heap figures status reports. gc.mem_free() allocates nothing but scans the whole heap
# (9 ms on a Pico): sampled at boot and every 6 hours, never per control tick nor per request.
import gc


class HeapWatch:
    def __init__(self):
        self.boot_mem = 0  # live heap once every task is built
        self.min_free = 1 << 30  # lowest gc.mem_free() seen, garbage included (GC runs at 0)
        self.peak_live = 0  # highest live heap right after a request, its reply still held
        self.heap_used = 0  # live heap after the last request (or boot)
        self.heap_total = 0  # what MicroPython gives Python, counted once at boot

    def mark(self):
        f = gc.mem_free()
        if f < self.min_free:
            self.min_free = f

    def after_request(self):
        """Collect while the request's reply is still held: its live heap is the peak we
        report, and the collection happens now, between requests, rather than when the heap
        runs out in the middle of something that is due. One collection and one count (about
        30 ms on a Pico); status reports these figures instead of scanning the heap again."""
        gc.collect()
        u = gc.mem_alloc()
        self.heap_used = u
        if u > self.peak_live:
            self.peak_live = u

    def at_boot(self):
        self.mark()  # a real figure from the start: the 6-hourly samples follow
        gc.collect()
        self.boot_mem = self.heap_used = gc.mem_alloc()
        self.heap_total = self.boot_mem + gc.mem_free()
