"""Engine scaling: throughput of sharded work on the local engine and on Ray with 1 and 2 actors, same data.

    python benchmarks/engine_scaling.py                 # scan: 240 procedural 512x512 PNGs, the embedded default model
    python benchmarks/engine_scaling.py --task features --extractor 'forensic {"crop": 512}'   # features extract
    python benchmarks/engine_scaling.py -n 1000 --shard-size 50 --address auto   # on a running Ray cluster

Peak memory is the driver's peak RSS plus, for Ray, the largest RSS of a worker process seen while running
(sampled with psutil when it is installed). Ray start-up (a few seconds) is excluded: it happens once per cluster.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

from gendetect.data.synthetic import synthetic_image
from gendetect.scale import run_scan


def _peak_worker_rss(stop: threading.Event, out: list[float]) -> None:
    try:
        import psutil
    except ImportError:
        return
    me = psutil.Process()
    while not stop.is_set():
        for child in me.children(recursive=True):
            try:
                out.append(child.memory_info().rss / 2**20)
            except psutil.Error:
                pass
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=240)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--shard-size", type=int, default=20)
    parser.add_argument("--address", default=None, help="Ray address; default: a local instance with 2 CPUs")
    parser.add_argument("--task", choices=["scan", "features"], default="scan", help="sharded scan or features extract")
    parser.add_argument(
        "--extractor",
        default=None,
        help="score with this extractor instead of the default model: 'NAME {json params}' "
        "(a heavier one shows CPU-bound scaling)",
    )
    args = parser.parse_args(argv)
    import json

    import numpy as np
    import ray

    from gendetect import DetectionPipeline, create_detector, create_extractor, load_model

    model = load_model()
    if args.extractor:
        name, _, params = args.extractor.partition(" ")
        ext = create_extractor(name, **(json.loads(params) if params.strip() else {}))
        rng = np.random.default_rng(0)
        det = create_detector("logistic").fit(rng.normal(size=(20, ext.dim)), np.r_[np.zeros(10), np.ones(10)])
        model = DetectionPipeline(ext, det, 0.5, {"name": f"bench-{name}"})
    print(f"model {model.name}: {model.extractor!r}")

    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i in range(args.n):
            path = Path(tmp) / f"{i:05d}.png"
            synthetic_image("real" if i % 2 else "fake", args.size, seed=i).save(path)
            files.append(str(path))
        from gendetect.data.readers import read_records
        from gendetect.features.store import FeatureStore
        from gendetect.scale.features import extract_to_store

        records = read_records(tmp, layout="folder", probe=True, hash=True) if args.task == "features" else []

        def run(out: Path, **kw: object) -> None:
            if args.task == "scan":
                run_scan(files, model, out, shard_size=args.shard_size, **kw)
            else:
                extract_to_store(
                    records, FeatureStore(out, model.extractor), model.extractor, shard_size=args.shard_size, **kw
                )

        print(f"task: {args.task}, {args.n} images of {args.size}x{args.size}, shard size {args.shard_size}")
        t0 = time.perf_counter()
        run(Path(tmp) / "local")
        local = args.n / (time.perf_counter() - t0)
        print(
            f"local engine:          {local:7.1f} images/s  (peak driver RSS "
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)"
        )
        if args.address:
            ray.init(address=args.address, log_to_driver=False)
        else:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        results = {}
        for workers in (1, 2):
            stop, rss = threading.Event(), []
            sampler = threading.Thread(target=_peak_worker_rss, args=(stop, rss), daemon=True)
            sampler.start()
            t0 = time.perf_counter()
            run(Path(tmp) / f"ray{workers}", engine="ray", workers=workers)
            results[workers] = args.n / (time.perf_counter() - t0)
            stop.set()
            sampler.join()
            peak = f"{max(rss):.0f} MiB" if rss else "n/a (pip install psutil)"
            print(
                f"ray engine, {workers} worker(s): {results[workers]:7.1f} images/s  (largest Ray process RSS {peak})"
            )
        ray.shutdown()
    print(f"ray 2/1 workers: {results[2] / results[1]:.2f}; ray 2 workers / local: {results[2] / local:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
