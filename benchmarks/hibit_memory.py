"""Peak memory of decoding one high-bit-depth image: a 16-bit greyscale PNG of SIZE x SIZE (a ramp, so it
compresses to a small file yet has a full value range).

Each decode runs in a fresh child process; the figure is the child's peak resident set size (VmHWM, reset through
/proc/self/clear_refs just before decoding, so imports do not count) minus its resident size at that moment, in MiB
and in bytes per pixel. Linux only.

    python benchmarks/hibit_memory.py                   # 10900 x 10900 (the case of issue 16), 16-bit grey
    python benchmarks/hibit_memory.py --size 3000 --mode F   # a 32-bit float TIFF instead
    PYTHONPATH=/tmp/before/src python benchmarks/hibit_memory.py   # against another source tree
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

_CHILD = r"""
import json, sys
from gendetect.imageio import load_image_with_info
path = sys.argv[1]
import gendetect, PIL.PngImagePlugin, PIL.TiffImagePlugin  # imports done before the baseline
def status_kib(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak (VmHWM) to the current resident size, so that imports do not count
before = status_kib("VmRSS")
im, info = load_image_with_info(path, max_pixels=200_000_000, hash=False)
peak = status_kib("VmHWM")
print(json.dumps({"before_kib": before, "peak_kib": peak, "mode": info.mode, "size": im.size, "out": im.mode,
                  "gendetect": gendetect.__file__}))
"""


def write_image(path: Path, size: int, mode: str) -> None:
    """A ``size`` x ``size`` ramp written in bands' worth of memory: a 16-bit PNG (``I;16``) or a float TIFF (``F``)."""
    row = np.linspace(0, 1, size, dtype=np.float64)
    if mode == "I;16":
        arr = np.broadcast_to((row * 65535).astype(np.uint16), (size, size))
        Image.fromarray(np.ascontiguousarray(arr)).save(path, "PNG", compress_level=9)
    else:
        arr = np.broadcast_to(row.astype(np.float32), (size, size))
        Image.fromarray(np.ascontiguousarray(arr), "F").save(path, "TIFF", compression="tiff_deflate")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=10_900)
    ap.add_argument("--mode", choices=["I;16", "F"], default="I;16")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("big.png" if args.mode == "I;16" else "big.tif")
        write_image(path, args.size, args.mode)
        out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(out.stderr[-2000:], file=sys.stderr)
            sys.exit(out.returncode)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        pixels = args.size * args.size
        delta = (r["peak_kib"] - r["before_kib"]) * 1024
        print(f"gendetect from {r['gendetect']}")
        print(
            f"{args.size}x{args.size} {r['mode']} ({path.stat().st_size / 1024:.0f} KiB file, {pixels / 1e6:.1f} Mpx) "
            f"-> {r['out']}: peak RSS {r['peak_kib'] / 1024:.0f} MiB, {delta / 2**20:.0f} MiB above the baseline, "
            f"{delta / pixels:.1f} bytes per pixel"
        )


if __name__ == "__main__":
    main()
