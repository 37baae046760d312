"""Decoder fuzzing: how many mutated image files make the decode step raise something other than an error row.

Valid PNG, JPEG, GIF, WebP, TIFF, BMP, AVIF (when Pillow has it) and ICO files are mutated with a seeded RNG (byte
flips, overwritten header fields, inserted or deleted runs, truncation, duplicated chunks) and each mutant is
decoded the way a scan decodes it (:func:`gendetect.imageio.load_image_with_info`). A *crash* is any exception other
than :class:`~gendetect.errors.ImageLoadError` (which a scan turns into an error row); a *hang* is a decode slower
than ``--slow`` seconds. The figure printed is crashes per 10,000 mutations, with the exception types.

    python benchmarks/fuzz_decode.py                   # 10,000 mutations, seed 0
    python benchmarks/fuzz_decode.py -n 50000 --seed 3
    PYTHONPATH=/tmp/before/src python benchmarks/fuzz_decode.py   # the same mutants against another source tree

The mutants depend only on ``--seed`` and ``-n``, so two source trees are compared on the same files.
"""

from __future__ import annotations

import argparse
import io
import time
import warnings
from collections import Counter

import numpy as np
from PIL import Image, features

import gendetect
from gendetect.errors import ImageLoadError
from gendetect.imageio import load_image_with_info


def seeds_images() -> dict[str, bytes]:
    """Small valid files of each format, with the features that decoders parse (EXIF, palettes, animation)."""
    rng = np.random.default_rng(12345)
    rgb = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    out: dict[str, bytes] = {}

    def save(name: str, im: Image.Image, fmt: str, **kw: object) -> None:
        buf = io.BytesIO()
        im.save(buf, fmt, **kw)
        out[name] = buf.getvalue()

    exif = Image.Exif()
    exif[0x0112] = 6
    save("jpeg", rgb, "JPEG", quality=85, exif=exif)
    save("jpeg-progressive", rgb, "JPEG", quality=70, progressive=True)
    save("png", rgb, "PNG")
    save("png16", Image.fromarray(rng.integers(0, 65535, (24, 32), dtype=np.uint16)), "PNG")
    save("png-palette", rgb.convert("P", palette=Image.Palette.ADAPTIVE), "PNG", transparency=0)
    frames = [rgb, rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    save("gif", frames[0].convert("P"), "GIF", save_all=True, append_images=[f.convert("P") for f in frames[1:]])
    save("webp", rgb, "WEBP", quality=80)
    save("webp-lossless", rgb.convert("RGBA"), "WEBP", lossless=True)
    save("tiff", rgb, "TIFF", compression="tiff_deflate")
    save("tiff-float", Image.fromarray(rng.random((24, 32), dtype=np.float32)), "TIFF")
    save("bmp", rgb, "BMP")
    save("ico", rgb, "ICO")
    if features.check("avif"):
        save("avif", rgb, "AVIF", quality=60)
    return out


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One seeded mutation of ``data`` (a few of the classic fuzzing moves, sometimes combined)."""
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        move = int(rng.integers(0, 7))
        n = len(buf)
        if n < 2:
            break
        if move == 0:  # flip a few bytes anywhere
            for i in rng.integers(0, n, int(rng.integers(1, 9))):
                buf[int(i)] = int(rng.integers(0, 256))
        elif move == 1:  # hit the header, where sizes and offsets live
            for i in rng.integers(0, min(n, 64), int(rng.integers(1, 5))):
                buf[int(i)] = int(rng.choice([0, 1, 0x7F, 0x80, 0xFF, int(rng.integers(0, 256))]))
        elif move == 2:  # truncate
            del buf[int(rng.integers(1, n)) :]
        elif move == 3:  # delete a run
            i = int(rng.integers(0, n))
            del buf[i : i + int(rng.integers(1, 64))]
        elif move == 4:  # insert random bytes
            i = int(rng.integers(0, n))
            buf[i:i] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
        elif move == 5:  # duplicate a run (repeated chunks, frames)
            i = int(rng.integers(0, n))
            buf[i:i] = buf[i : i + int(rng.integers(1, 256))]
        else:  # overwrite a 32-bit field with an extreme value
            i = int(rng.integers(0, max(1, n - 4)))
            buf[i : i + 4] = int(rng.choice([0, 0xFFFFFFFF, 0x7FFFFFFF, 0x10000, int(rng.integers(0, 2**32))])).to_bytes(
                4, "big"
            )
    return bytes(buf)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=10_000, help="mutations in all (spread over the seed files)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--slow", type=float, default=5.0, help="seconds after which one decode counts as a hang")
    args = ap.parse_args()

    warnings.simplefilter("ignore")  # Pillow warns about many damaged files; the outcomes are what count
    seeds = seeds_images()
    names = sorted(seeds)
    rng = np.random.default_rng(args.seed)
    crashes: Counter[str] = Counter()
    by_format: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    slow = 0
    t0 = time.perf_counter()
    for i in range(args.n):
        name = names[i % len(names)]
        data = mutate(seeds[name], rng)
        t = time.perf_counter()
        try:
            load_image_with_info(data, max_pixels=20_000_000)
            outcomes["ok"] += 1
        except ImageLoadError:
            outcomes["error row"] += 1
        except Exception as e:  # noqa: BLE001 - counting what escapes is the point of this script
            outcomes["crash"] += 1
            crashes[type(e).__name__] += 1
            by_format[name] += 1
        if time.perf_counter() - t > args.slow:
            slow += 1
    seconds = time.perf_counter() - t0
    n_crash = outcomes["crash"]
    print(f"gendetect from {gendetect.__file__}")
    print(f"{args.n} mutations of {len(names)} seed files ({', '.join(names)}), seed {args.seed}, {seconds:.1f} s")
    print(f"outcomes: {dict(outcomes)}; decodes slower than {args.slow:g} s: {slow}")
    print(f"crashes per 10k mutations: {n_crash / args.n * 10_000:.1f}")
    if crashes:
        print("crash types:", ", ".join(f"{k} {v}" for k, v in crashes.most_common()))
        print("crashes by seed file:", ", ".join(f"{k} {v}" for k, v in by_format.most_common()))


if __name__ == "__main__":
    main()
