#!/usr/bin/env python3
"""How long an fdatasync takes on this disk when the previous one ended `gap` microseconds ago.

The decision log's group commit is tuned by this: on the development VM an fdatasync right after
another took about 55 us, and one after a pause of 100 us or more about 250 us.

    python3 benches/scripts/fdatasync_gap.py [DIR]   # DIR on the disk to probe (default: .)
"""
import os
import sys
import time

KIB = 19  # one group of 64 log entries of 256 bytes, framed
SECONDS = 2.0


def probe(path, gap_us):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    try:
        # Preallocated, as the log's segments are: an fdatasync then flushes data only.
        os.pwrite(fd, b"\0" * (64 << 20), 0)
        os.fsync(fd)
        offset, size, times = 12_411, KIB * 1024, []
        started = time.perf_counter()
        while time.perf_counter() - started < SECONDS and offset + size < 64 << 20:
            os.pwrite(fd, os.urandom(size), offset)
            t = time.perf_counter()
            os.fdatasync(fd)
            times.append((time.perf_counter() - t) * 1e6)
            offset += size
            until = time.perf_counter() + gap_us / 1e6
            while time.perf_counter() < until:  # busy: a sleep would add its own latency
                pass
        times.sort()
        return times[len(times) // 2], times[int(len(times) * 0.9)]
    finally:
        os.close(fd)
        os.unlink(path)


def main():
    path = os.path.join(sys.argv[1] if len(sys.argv) > 1 else ".", "fdatasync-gap-probe")
    for gap in (0, 25, 50, 75, 100, 150, 400):
        p50, p90 = probe(path, gap)
        print(f"gap {gap:4d} us: {KIB} KiB write + fdatasync p50 {p50:5.0f} us, p90 {p90:5.0f} us")


if __name__ == "__main__":
    main()
