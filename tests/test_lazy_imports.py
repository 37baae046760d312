"""Start-up stays cheap: ``import gendetect``, ``gendetect --help`` and a scan with the default model never import
scikit-learn, scipy or pandas (issue 17: they were 90% of a one-image scan), whatever the default model is.

Each case runs in a fresh interpreter, since this test process has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

NEVER = ("sklearn", "scipy", "pandas", "torch", "matplotlib", "fastapi", "ray")

_PROBE = """
import json, sys
args = json.loads(sys.argv[1])
if args is None:
    import gendetect
    gendetect.__version__
else:
    from gendetect.cli import main
    try:
        main(args, prog_name="gendetect", standalone_mode=False)
    except SystemExit:
        pass
print(json.dumps(sorted(m.partition(".")[0] for m in sys.modules)))
"""


def _modules(args: list[str] | None) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args)], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _heavy(mods: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in names if m in mods)


def test_import_gendetect_is_light() -> None:
    mods = _modules(None)
    assert _heavy(mods, (*NEVER, "pyarrow")) == []
    assert "gendetect.pipeline" not in mods  # the curated names load on first use


def test_help_is_light() -> None:
    mods = _modules(["--help"])
    assert _heavy(mods, (*NEVER, "pyarrow")) == []
    # the command modules import only click and the limits at the top: listing the commands decodes no image
    assert _heavy(mods, ("numpy", "PIL")) == []


@pytest.mark.parametrize("output", [None, "csv"])
def test_scan_with_the_default_model_is_light(tmp_path: Path, output: str | None) -> None:
    rng = np.random.default_rng(0)
    image = tmp_path / "one.jpg"
    Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(image, quality=90)
    args = ["scan", str(image), "--no-progress"]
    if output:
        args += ["-o", str(tmp_path / f"out.{output}")]
    mods = _modules(args)
    assert "PIL" in mods  # it did scan
    assert _heavy(mods, NEVER) == []
    if output:
        assert (tmp_path / f"out.{output}").read_text().count("\n") == 2  # header + one row


def test_a_shard_worker_is_light(tmp_path: Path) -> None:
    """What a Ray actor runs: unpickle the scan task, load the model, score and commit a shard."""
    rng = np.random.default_rng(0)
    image = tmp_path / "one.png"
    Image.fromarray(rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)).save(image)
    code = f"""
import json, pickle, sys
from gendetect.pipeline import default_model_path, load_model
from gendetect.scale.engines import ScanTask
from gendetect.scale.runner import Shard, ShardStore, run_one
task = pickle.loads(pickle.dumps(ScanTask(str(default_model_path()), load_model().version)))
task.setup()
shard = Shard(0, ({str(image)!r},))
store = ShardStore({str(tmp_path / "run")!r}, None, task.plan(), incremental=True)
assert run_one(task, shard, store) == 1
print(json.dumps(sorted(m.partition(".")[0] for m in sys.modules)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    mods = set(json.loads(out.stdout.strip().splitlines()[-1]))
    # pyarrow itself imports pandas (when installed) as soon as it converts Python values, to commit the shard
    assert _heavy(mods, tuple(m for m in NEVER if m != "pandas")) == []
