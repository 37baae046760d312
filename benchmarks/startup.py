"""Start-up cost: CPU time and peak memory of ``gendetect --help`` and ``gendetect scan one.jpg``, in subprocesses.

Each case runs in a fresh interpreter (what a user, a worker or a Ray actor pays). The cases are interleaved and
repeated; the script prints the median CPU time (user + system of the child), wall time and peak RSS of each, the
heavy modules the child imported, and the machine's load average.

    python benchmarks/startup.py            # 5 rounds
    python benchmarks/startup.py -r 9       # more rounds
    python benchmarks/startup.py --compare-model /tmp/v3   # also the scan with another model, interleaved

Target (issue 17): ``gendetect scan one.jpg`` <= 0.5 s CPU.

Bytecode: an installed package runs from cached bytecode (pip compiles it at install time; an editable install
writes ``__pycache__`` on first import). Where ``PYTHONDONTWRITEBYTECODE`` is set (this project's sandbox sets it),
every child would recompile gendetect's own modules (about 0.08 s of CPU here), which no user pays. So the children
run without it, with ``PYTHONPYCACHEPREFIX`` pointing into a temporary folder (nothing is written into the source
tree), after one warm-up round that is not counted; the scan is also run recompiling every time, interleaved, to show
what the cache saves.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("sklearn", "scipy", "pandas", "pyarrow", "torch", "matplotlib", "fastapi")

# Runs the CLI in-process so that the child can report which heavy modules it imported and its own peak RSS
# (VmHWM, which exec resets; getrusage's ru_maxrss would include the parent's size at fork). CPU time is measured
# from outside (wait4), so this wrapper adds only the interpreter itself.
_PROBE = """
import json, sys
args = sys.argv[2:]
try:
    if args:
        from gendetect.cli import main
        main(args, prog_name="gendetect", standalone_mode=False)
finally:
    hwm = 0
    try:
        with open("/proc/self/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        import resource
        hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(sys.argv[1], "w") as f:
        json.dump({"heavy": [m for m in HEAVY if m in sys.modules], "hwm_kib": hwm}, f)
"""


def child_env(tmp: Path, src: Path | None = None, cold_bytecode: bool = False) -> dict[str, str]:
    """The children's environment: ``src`` first on the path (a baseline tree), and bytecode cached under ``tmp``
    unless ``cold_bytecode`` (then recompiled on every run, as ``PYTHONDONTWRITEBYTECODE`` makes it)."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = str(src)
    if cold_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    return env


def _run(
    args: list[str] | None, tmp: Path, src: Path | None = None, cold_bytecode: bool = False
) -> tuple[float, float, float, str]:
    """(cpu_s, wall_s, peak_rss_mib, heavy modules) of one ``gendetect ARGS`` (None: the bare interpreter) in a
    fresh interpreter; CPU is the child's own, from wait4."""
    marker = tmp / "probe.json"
    marker.unlink(missing_ok=True)
    cmd = [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n" + _PROBE, str(marker), *(args or [])]
    t0 = time.perf_counter()
    env = child_env(tmp, src, cold_bytecode)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1) or not marker.exists():
        raise SystemExit(f"gendetect {' '.join(args or [])} failed with exit code {proc.returncode}")
    probe = json.loads(marker.read_text())
    return usage.ru_utime + usage.ru_stime, wall, probe["hwm_kib"] / 1024, ",".join(probe["heavy"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-r", "--rounds", type=int, default=5, help="interleaved repetitions (>= 3)")
    parser.add_argument("--image", type=Path, default=None, help="image to scan (default: a 512x512 JPEG)")
    parser.add_argument("--json", action="store_true", help="print the medians as JSON too")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another source tree's src/ folder (e.g. from `git archive OLD src | tar -x -C /tmp/old`), run "
        "interleaved with this one",
    )
    parser.add_argument(
        "--compare-model",
        type=Path,
        default=None,
        help="another model directory: also scan one.jpg with --model DIR, interleaved (the new default against "
        "the previous one)",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        image = args.image
        if image is None:
            import numpy as np
            from PIL import Image

            rng = np.random.default_rng(0)
            image = tmp / "one.jpg"
            Image.fromarray(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)).save(image, quality=90)
        base_cases = {
            "gendetect --help": ["--help"],
            "gendetect scan one.jpg": ["scan", str(image), "--no-progress"],
            "python (bare interpreter)": None,
        }
        # name -> (arguments, source tree, recompile every run)
        cases: dict[str, tuple[list[str] | None, Path | None, bool]] = {
            k: (v, None, False) for k, v in base_cases.items()
        }
        cases["gendetect scan one.jpg [cold bytecode]"] = (base_cases["gendetect scan one.jpg"], None, True)
        if args.baseline:
            cases.update({f"{k} [baseline]": (v, args.baseline, False) for k, v in base_cases.items() if v})
        if args.compare_model:
            cases["gendetect scan one.jpg --model DIR"] = (
                ["scan", str(image), "--no-progress", "--model", str(args.compare_model)],
                None,
                False,
            )
        results: dict[str, list[tuple[float, float, float, str]]] = {k: [] for k in cases}
        for cmd, src, _cold in cases.values():  # warm-up round, not counted: writes the cached bytecode
            _run(cmd, tmp, src)
        load_before = os.getloadavg()
        for _ in range(max(3, args.rounds)):
            for name, (cmd, src, cold) in cases.items():
                results[name].append(_run(cmd, tmp, src, cold))
        load_after = os.getloadavg()

    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min) on {os.cpu_count()} CPUs")
    print("bytecode: cached after a warm-up round, except in the case marked [cold bytecode] (recompiled each run)")
    print(f"{'case':37} {'CPU s':>7} {'wall s':>7} {'peak RSS MiB':>13}  heavy modules imported")
    summary = {}
    for name, runs in results.items():
        cpu = statistics.median(r[0] for r in runs)
        wall = statistics.median(r[1] for r in runs)
        rss = statistics.median(r[2] for r in runs)
        heavy = runs[-1][3] or "-"
        summary[name] = {"cpu_s": cpu, "wall_s": wall, "peak_rss_mib": rss, "heavy": heavy}
        print(f"{name:37} {cpu:7.3f} {wall:7.3f} {rss:13.0f}  {heavy}")
    if args.baseline:
        for name in base_cases:
            if f"{name} [baseline]" in summary:
                before, after = summary[f"{name} [baseline]"], summary[name]
                print(
                    f"{name}: CPU {before['cpu_s']:.3f} -> {after['cpu_s']:.3f} s "
                    f"({before['cpu_s'] / after['cpu_s']:.1f}x less), peak RSS {before['peak_rss_mib']:.0f} -> "
                    f"{after['peak_rss_mib']:.0f} MiB"
                )
    cold, warm = summary["gendetect scan one.jpg [cold bytecode]"], summary["gendetect scan one.jpg"]
    print(f"cached bytecode saves the scan {1 - warm['cpu_s'] / cold['cpu_s']:.0%} of its CPU time")
    target = summary["gendetect scan one.jpg"]["cpu_s"]
    print(f"target: gendetect scan one.jpg <= 0.5 s CPU: {target:.3f} s -> {'met' if target <= 0.5 else 'MISSED'}")
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
