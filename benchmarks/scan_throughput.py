"""Scan throughput against its physical floor, and the ``--jobs`` speed-up.

Part 1 (in this process): ``scan()`` end to end (list, read + hash, decode, extract, score, rows) against the floor
on the same files: decode (``load_image_with_info``) plus ``extractor.extract_one``, which any scanner must pay.
The ratio floor / scan says what the machinery around decoding and features costs (target >= 0.9).

Part 2 (subprocesses): ``gendetect scan DIR -o out.csv --jobs 1`` against ``--jobs N``, whole commands, wall time
(target for N = 2 on 2 cores: >= 1.8x). Part 3 (``--allocator``): the same command with glibc's allocator at its
defaults against the tuned thresholds (CPU time, page faults).

Every pair is interleaved (A, B, A, B...) and repeated; medians, ratios and the machine's load are printed. On a
shared machine the load says how much to trust the figures: a ratio measured interleaved is fair to both sides.

    python benchmarks/scan_throughput.py                      # 500 procedural 512x384 JPEG photos
    python benchmarks/scan_throughput.py --images DIR         # your own folder
    python benchmarks/scan_throughput.py -n 200 -r 3 --jobs 2 # smaller, quicker
    python benchmarks/scan_throughput.py --skip-jobs          # part 1 only
    python benchmarks/scan_throughput.py --no-evidence        # pixels only (no metadata/C2PA/watermark checks)
    python benchmarks/scan_throughput.py --allocator          # plus part 3: glibc allocator tuning on and off
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


def make_photos(folder: Path, n: int, size: tuple[int, int] = (512, 384)) -> None:
    """Photo-like JPEGs: smooth scenes with sensor-like noise, quality 85-95 (decoding costs what a photo's does)."""
    from gendetect.data.synthetic import synthetic_image

    rng = np.random.default_rng(0)
    for i in range(n):
        base = synthetic_image("real", size=max(size), seed=i).resize(size)
        a = np.asarray(base, dtype=np.float32) + rng.normal(0, 6, (size[1], size[0], 3))
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(folder / f"{i:05d}.jpg", quality=85 + i % 11)


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def _timed(fn) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def part1(files: list[str], model, rounds: int, evidence: bool) -> None:
    import inspect

    from gendetect import scan
    from gendetect.imageio import load_image_with_info

    ext = model.extractor
    kw = {} if evidence or "evidence" not in inspect.signature(scan).parameters else {"evidence": False}

    def run_scan() -> None:
        rows = list(scan(files, model, **kw))
        assert len(rows) == len(files)

    def run_floor() -> None:
        for f in files:
            image, _ = load_image_with_info(f)
            ext.extract_one(image)

    run_scan(), run_floor()  # warm-up: imports, caches, page cache
    res: dict[str, list[tuple[float, float]]] = {"scan": [], "floor": []}
    for _ in range(rounds):
        res["scan"].append(_timed(run_scan))
        res["floor"].append(_timed(run_floor))
    n = len(files)
    what = "scan()" + (" with evidence=False" if kw else "")
    print(f"part 1: {what} vs decode + extract, {n} images, {rounds} interleaved rounds; load {_load()}")
    med = {}
    for name, runs in res.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        med[name] = (wall, cpu)
        print(f"  {name:6} wall {wall:7.2f} s ({n / wall:6.1f} img/s)   CPU {cpu:7.2f} s ({n / cpu:6.1f} img/s/core)")
    ratios = [f[1] / s[1] for s, f in zip(res["scan"], res["floor"])]
    per_round = ", ".join(f"{r:.3f}" for r in ratios)
    print(
        f"  ratio floor/scan, CPU: median {statistics.median(ratios):.3f} (per round {per_round})"
        f"; wall: {med['floor'][0] / med['scan'][0]:.3f}   target >= 0.9"
    )


def part2(folder: Path, n: int, jobs: int, rounds: int, extra: list[str]) -> None:
    exe = [sys.executable, "-m", "gendetect.cli"]
    if Path(sys.executable).with_name("gendetect").exists():
        exe = [str(Path(sys.executable).with_name("gendetect"))]
    res: dict[int, list[float]] = {1: [], jobs: []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            for j in (1, jobs):
                t0 = time.perf_counter()
                subprocess.run(
                    [*exe, "scan", str(folder), "--no-progress", "-j", str(j), "-o", f"{tmp}/out.csv", *extra],
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                res[j].append(time.perf_counter() - t0)
    what = " ".join(["gendetect scan", *extra])
    print(f"part 2: {what} -j 1 vs -j {jobs}, {n} images, {rounds} interleaved rounds; load {_load()}")
    for j, runs in res.items():
        print(f"  --jobs {j}: median wall {statistics.median(runs):6.2f} s ({', '.join(f'{r:.2f}' for r in runs)})")
    ratios = [a / b for a, b in zip(res[1], res[jobs])]
    print(
        f"  speed-up --jobs {jobs} / --jobs 1: median {statistics.median(ratios):.2f}x "
        f"(per round {', '.join(f'{r:.2f}' for r in ratios)})   target >= {0.9 * jobs:.1f}x"
    )


def part3(folder: Path, n: int, rounds: int, extra: list[str]) -> None:
    """The allocator tuning: ``gendetect scan`` with ``GENDETECT_MALLOC_TUNE=0`` (glibc defaults) against the
    default (raised mmap/trim thresholds), child CPU time and minor page faults from wait4."""
    exe = [sys.executable, "-m", "gendetect.cli"]
    if Path(sys.executable).with_name("gendetect").exists():
        exe = [str(Path(sys.executable).with_name("gendetect"))]
    res: dict[str, list[tuple[float, float, int]]] = {"0": [], "1": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            for tune in ("0", "1"):
                cmd = [*exe, "scan", str(folder), "--no-progress", "-o", f"{tmp}/out.csv", *extra]
                env = {**os.environ, "GENDETECT_MALLOC_TUNE": tune}
                proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
                _, _, usage = os.wait4(proc.pid, 0)
                res[tune].append((usage.ru_utime, usage.ru_stime, usage.ru_minflt))
    print(f"part 3: allocator tuning, {n} images, {rounds} interleaved rounds; load {_load()}")
    for tune, runs in res.items():
        user = statistics.median(r[0] for r in runs)
        sys_ = statistics.median(r[1] for r in runs)
        faults = statistics.median(r[2] for r in runs)
        label = "tuned (default)" if tune == "1" else "glibc defaults "
        print(f"  {label}: user {user:6.2f} s  sys {sys_:5.2f} s  minor faults {faults:9.0f} ({faults / n:6.0f}/image)")
    cpu = {t: statistics.median(r[0] + r[1] for r in runs) for t, runs in res.items()}
    print(f"  CPU tuned / untuned: {cpu['1'] / cpu['0']:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, help="folder to scan (default: procedural photos)")
    parser.add_argument("-n", type=int, default=500, help="procedural photos to make")
    parser.add_argument("--model", default=None, help="model directory (default: the embedded default)")
    parser.add_argument("--jobs", type=int, default=2, help="workers for part 2")
    parser.add_argument("-r", "--rounds", type=int, default=3, help="interleaved repetitions (>= 3)")
    parser.add_argument("--skip-jobs", action="store_true", help="part 1 only")
    parser.add_argument("--skip-floor", action="store_true", help="skip part 1")
    parser.add_argument("--allocator", action="store_true", help="also part 3: the glibc allocator tuning")
    parser.add_argument(
        "--no-evidence", action="store_true", help="scan without the evidence checks (metadata, C2PA, watermark)"
    )
    args = parser.parse_args(argv)
    rounds = max(3, args.rounds)

    from gendetect import expand_inputs, load_model

    try:
        from gendetect.features.extract import tune_allocator

        tuned = tune_allocator()  # as the CLI does: both sides of part 1 get the same allocator
    except ImportError:  # an older gendetect (PYTHONPATH=old/src, for a before/after)
        tuned = False
    model = load_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.images
        if folder is None:
            folder = Path(tmp)
            make_photos(folder, args.n)
        files, _ = expand_inputs([folder])
        print(f"model: {model.name}  extractor: {model.extractor!r}; allocator tuned: {tuned}")
        print(f"images: {len(files)} from {folder if args.images else 'procedural 512x384 JPEG photos'}")
        if not args.skip_floor:
            part1(files, model, rounds, evidence=not args.no_evidence)
        if not args.skip_jobs:
            part2(folder, len(files), args.jobs, rounds, ["--no-evidence"] if args.no_evidence else [])
        if args.allocator:
            part3(folder, len(files), rounds, ["--no-evidence"] if args.no_evidence else [])
    return 0


if __name__ == "__main__":
    sys.exit(main())
