"""Scan throughput: ``gendetect scan`` end to end against the feature extractor alone, and peak memory.

End to end = list files, read + hash bytes, decode (EXIF, mode conversion), extract features, score, build rows.
Extractor alone = ``extractor.extract_one`` on the same images already decoded in memory. The ratio says how much
the machinery around the features costs.

    python benchmarks/scan_throughput.py                      # procedural 512x512 JPEGs + PNGs
    python benchmarks/scan_throughput.py --images DIR         # your own folder
    python benchmarks/scan_throughput.py --jobs 2             # worker processes for the end-to-end scan
    python benchmarks/scan_throughput.py --big                # plus one 8000x6000 JPEG: time and peak memory

Peak memory is the process's peak resident set size (ru_maxrss) after each stage, plus tracemalloc's peak of
Python-level allocations during the end-to-end scan.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from gendetect import expand_inputs, load_model, scan
from gendetect.data.synthetic import synthetic_image
from gendetect.imageio import load_image


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_images(folder: Path, n: int, size: int) -> None:
    for i in range(n):
        im = synthetic_image("real" if i % 2 else "fake", size=size, seed=i)
        if i % 2:
            im.save(folder / f"{i:04d}.jpg", quality=90)
        else:
            im.save(folder / f"{i:04d}.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, help="folder to scan (default: procedural images)")
    parser.add_argument("-n", type=int, default=200, help="procedural images to make")
    parser.add_argument("--size", type=int, default=512, help="procedural image side (px)")
    parser.add_argument("--model", default=None, help="model directory (default: the embedded default)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--big", action="store_true", help="also scan one 8000x6000 JPEG and report peak memory")
    args = parser.parse_args(argv)

    model = load_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.images
        if folder is None:
            folder = Path(tmp)
            make_images(folder, args.n, args.size)
        files, _ = expand_inputs([folder])
        print(f"model: {model.name}  extractor: {model.extractor!r}")
        print(f"images: {len(files)} from {folder if args.images else f'procedural {args.size}x{args.size} JPEG/PNG'}")

        # warm-up (imports, caches)
        list(scan(files[:4], model))

        t0 = time.perf_counter()
        rows = list(scan(files, model, jobs=args.jobs))
        t_scan = time.perf_counter() - t0
        rss_scan = _rss_mib()
        n_ok = sum(r.status == "ok" for r in rows)

        # memory of the scan loop itself, traced separately (tracing slows it down)
        tracemalloc.start()
        list(scan(files[:50], model))
        _, py_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

        images = [load_image(f) for f in files]
        t0 = time.perf_counter()
        for im in images:
            model.extractor.extract_one(im)
        t_extract = time.perf_counter() - t0

    scan_ips = len(files) / t_scan
    extract_ips = len(images) / t_extract
    print(f"scan end to end (jobs={args.jobs}): {scan_ips:8.1f} images/s  ({n_ok}/{len(rows)} ok, {t_scan:.2f} s)")
    print(f"extractor alone (1 process):  {extract_ips:8.1f} images/s  ({t_extract:.2f} s on decoded images)")
    print(f"ratio scan / extractor: {scan_ips / extract_ips:.2f}")
    print(
        f"peak RSS after scan: {rss_scan:.0f} MiB; tracemalloc peak while scanning 50 images: {py_peak / 2**20:.1f} MiB"
    )

    if args.big:
        with tempfile.TemporaryDirectory() as tmp:
            big = Path(tmp) / "big.jpg"
            # made in a child process so that its memory does not count here
            code = (
                "import numpy as np, sys; from PIL import Image; rng = np.random.default_rng(0); "
                "Image.fromarray(rng.integers(0, 256, (6000, 8000, 3), dtype=np.uint8)).save(sys.argv[1], "
                "quality=90)"
            )
            subprocess.run([sys.executable, "-c", code, str(big)], check=True)
            t0 = time.perf_counter()
            (row,) = scan([big], model)
            print(
                f"one 8000x6000 JPEG: {time.perf_counter() - t0:.2f} s, status {row.status}; "
                f"peak RSS now {_rss_mib():.0f} MiB (decoded RGB alone is {8000 * 6000 * 3 / 2**20:.0f} MiB)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
