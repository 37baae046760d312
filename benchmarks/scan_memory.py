"""Peak memory against the number of images: ``gendetect scan`` of 20,000 images against 2,000.

Tiny generated images (so that it runs in minutes), scanned by the CLI in fresh processes; the peak RSS is the
child's own high-water mark (``VmHWM``, from its /proc status at exit). Modes:

* ``parquet``: ``gendetect scan DIR -o x.parquet``
* ``engine``: ``gendetect scan DIR --engine local -o x.parquet``
* any other output suffix: ``--mode csv``, ``--mode jsonl``

Small and large runs are interleaved and repeated; the script prints median peaks, their ratio (target: within 5%),
the extra memory per image, and the machine's load.

    python benchmarks/scan_memory.py                      # 2,000 vs 20,000 images, parquet and engine, 3 rounds
    python benchmarks/scan_memory.py --small 500 --large 5000 --rounds 3 --mode parquet
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

_PROBE = """
import sys
from gendetect.cli import main
try:
    main(sys.argv[2:], prog_name="gendetect", standalone_mode=False)
finally:
    with open("/proc/self/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    with open(sys.argv[1], "w") as f:
        f.write(str(hwm))
"""


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def make_images(folder: Path, n: int, size: int = 32) -> None:
    """``n`` tiny JPEGs (noise), in sub-folders of 1,000."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    for i in range(n):
        sub = folder / f"{i // 1000:03d}"
        sub.mkdir(exist_ok=True)
        a = np.roll(base, i, axis=1)
        a[0, 0] = i % 256  # every file differs
        Image.fromarray(a).save(sub / f"{i:06d}.jpg", quality=90)


def _peak_mib(folder: Path, mode: str, tmp: Path, extra: list[str]) -> tuple[float, float]:
    suffix = "parquet" if mode in ("parquet", "engine") else mode
    out = tmp / f"out-{time.monotonic_ns()}.{suffix}"
    args = ["scan", str(folder), "--no-progress", "-o", str(out), *extra]
    if mode == "engine":
        args += ["--engine", "local"]
    marker = tmp / "hwm.txt"
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", _PROBE, str(marker), *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return int(marker.read_text()) / 1024, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large", type=int, default=20000)
    parser.add_argument("-r", "--rounds", type=int, default=3, help="interleaved repetitions (>= 3)")
    parser.add_argument(
        "--mode", action="append", choices=["parquet", "engine", "csv", "jsonl"], help="default: parquet and engine"
    )
    parser.add_argument("--size", type=int, default=32, help="image side (px)")
    parser.add_argument("--scan-arg", action="append", default=[], help="extra argument for gendetect scan")
    args = parser.parse_args(argv)
    modes = args.mode or ["parquet", "engine"]
    rounds = max(3, args.rounds)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        folders = {}
        for n in (args.small, args.large):
            folders[n] = tmp / f"images-{n}"
            folders[n].mkdir()
            make_images(folders[n], n, args.size)
        print(f"{args.small} vs {args.large} JPEGs of {args.size}x{args.size}, {rounds} interleaved rounds")
        print(f"load before: {_load()}")
        for mode in modes:
            peaks: dict[int, list[float]] = {args.small: [], args.large: []}
            secs: dict[int, list[float]] = {args.small: [], args.large: []}
            for _ in range(rounds):
                for n in (args.small, args.large):
                    peak, sec = _peak_mib(folders[n], mode, tmp, args.scan_arg)
                    peaks[n].append(peak)
                    secs[n].append(sec)
            small, large = statistics.median(peaks[args.small]), statistics.median(peaks[args.large])
            per_image = (large - small) * 2**20 / (args.large - args.small)
            print(
                f"{mode:8} peak RSS {args.small:>6}: {small:6.1f} MiB  {args.large:>6}: {large:6.1f} MiB  "
                f"ratio {large / small:.3f} ({'within' if large / small <= 1.05 else 'MISSES'} the 5% target); "
                f"{per_image:+.0f} B per extra image; {statistics.median(secs[args.large]):.0f} s per large scan"
            )
            print(f"         per round: {args.small}: {peaks[args.small]}, {args.large}: {peaks[args.large]}")
        print(f"load after: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
