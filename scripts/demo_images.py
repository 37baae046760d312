"""Print the folders `make demo` scans: the test-only examples in ../shared/data when present, else a few real
photographs from scikit-image written to ``.demo/`` (no download needed)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", default="../shared/data", help="the shared data folder")
    parser.add_argument("--out", default=".demo", help="where to write the scikit-image photos")
    args = parser.parse_args(argv)

    shared = Path(args.shared)
    examples = shared / "diffusion-examples"
    if examples.is_dir():
        print(examples)
        return 0
    print(f"{examples} not found; scanning scikit-image's sample photographs instead", file=sys.stderr)
    from PIL import Image
    from skimage import data

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        path = out / f"{name}.png"
        if not path.exists():
            try:
                Image.fromarray(getattr(data, name)()).save(path)
            except Exception as e:  # noqa: BLE001 - a sample missing from an older scikit-image is not fatal
                print(f"skipping {name}: {e}", file=sys.stderr)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
