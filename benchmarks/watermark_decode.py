"""Cost of the watermark check's decoding with OpenCV's colour conversion against the numpy one (core install).

``gendetect.evidence.watermark.decode`` reads every known mark (four readings: two channel orders, uint8 and
float32). Without OpenCV the YUV conversion runs in numpy (:func:`gendetect.evidence.watermark.u_plane`, the same
bits). Both backends are timed interleaved on the same random images, one run, and printed as seconds and as the
ratio numpy / OpenCV; the one-off cost of ``import cv2`` in a fresh interpreter is printed beside them.

    python benchmarks/watermark_decode.py            # 1 and 12 megapixels, 5 rounds
    python benchmarks/watermark_decode.py -r 9 --mp 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from gendetect.evidence import watermark


def time_decode(rgb: np.ndarray, backend: str) -> float:
    saved = sys.modules.get("cv2")
    if backend == "numpy":
        sys.modules["cv2"] = None  # `import cv2` fails: decode converts with numpy
    try:
        t = time.perf_counter()
        watermark.decode(rgb)
        return time.perf_counter() - t
    finally:
        if backend == "numpy":
            if saved is None:
                del sys.modules["cv2"]
            else:
                sys.modules["cv2"] = saved


def import_cost(rounds: int) -> float:
    """Median CPU seconds of ``import cv2`` in a fresh interpreter, less the interpreter with numpy alone."""
    def cpu(code: str) -> float:
        before = os.times()
        subprocess.run([sys.executable, "-c", code], check=True)
        after = os.times()
        return (after.children_user - before.children_user) + (after.children_system - before.children_system)

    return statistics.median(cpu("import numpy, cv2") - cpu("import numpy") for _ in range(rounds))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-r", "--rounds", type=int, default=5)
    ap.add_argument("--mp", type=float, nargs="+", default=[1.0, 12.0], help="image sizes in megapixels (4:3)")
    args = ap.parse_args()
    try:
        import cv2  # noqa: F401
    except ImportError:
        print("OpenCV is not installed: nothing to compare (pip install opencv-python-headless)", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    print(f"load average {os.getloadavg()[0]:.2f}; import cv2 costs {import_cost(args.rounds):.3f} s CPU once")
    for mp in args.mp:
        h = int(round((mp * 1e6 * 3 / 4) ** 0.5))
        rgb = (rng.random((h, h * 4 // 3, 3)) * 255).astype(np.uint8)
        times: dict[str, list[float]] = {"opencv": [], "numpy": []}
        for _ in range(args.rounds):
            for backend in times:
                times[backend].append(time_decode(rgb, backend))
        cv, npy = (statistics.median(times[b]) for b in ("opencv", "numpy"))
        print(f"{rgb.shape[1]}x{rgb.shape[0]} ({mp:g} MP): decode opencv {cv:.3f} s, numpy {npy:.3f} s, "
              f"numpy / opencv {npy / cv:.1f}x, numpy - opencv {npy - cv:.3f} s per image")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
