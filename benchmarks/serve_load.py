"""HTTP service load: requests per second and p50/p99 latency of single-image ``POST /v1/detect``, against the same
model called in-process on the same bytes (decode + features + score).

    python benchmarks/serve_load.py                    # 200 requests, concurrency 2, 512x512 PNG, store off
    python benchmarks/serve_load.py --store            # with the result store on (repeat uploads become lookups)
    python benchmarks/serve_load.py -n 500 -c 4 --size 1024

The server runs in this process under uvicorn on 127.0.0.1 (one event loop; FastAPI runs the endpoint in its
thread pool); the load comes from ``-c`` client threads, each sending one request at a time (a bounded load).
"""

from __future__ import annotations

import argparse
import io
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import uvicorn

from gendetect import load_model
from gendetect.data.synthetic import synthetic_image
from gendetect.imageio import load_image_with_info
from gendetect.server.app import ServerSettings, create_app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stats(latencies: list[float], wall: float) -> str:
    lat = np.array(latencies) * 1000
    return f"{len(lat) / wall:7.1f} req/s   p50 {np.percentile(lat, 50):7.1f} ms   p99 {np.percentile(lat, 99):7.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=200, help="requests")
    parser.add_argument("-c", type=int, default=2, help="concurrent clients")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--store", action="store_true", help="keep the result store on")
    args = parser.parse_args(argv)

    # distinct images so that no request is a repeat, unless --store is measuring lookups
    payloads = []
    for i in range(min(args.n, 50)):
        buf = io.BytesIO()
        synthetic_image("real" if i % 2 else "fake", args.size, seed=i).save(buf, "PNG")
        payloads.append(buf.getvalue())

    model = load_model()
    # in-process: the same work the endpoint does, minus HTTP
    lat = []
    t0 = time.perf_counter()
    for i in range(args.n):
        s = time.perf_counter()
        image, _ = load_image_with_info(payloads[i % len(payloads)])
        model.predict_proba([image])
        lat.append(time.perf_counter() - s)
    wall_inproc = time.perf_counter() - t0
    inproc = _stats(lat, wall_inproc)

    with tempfile.TemporaryDirectory() as tmp:
        settings = ServerSettings(db_url=f"sqlite:///{Path(tmp) / 'r.sqlite'}", use_store=args.store)
        app = create_app(model, settings)
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/v1/detect"
        local = threading.local()

        def one(i: int) -> float:
            if not hasattr(local, "client"):
                local.client = httpx.Client(timeout=60)
            s = time.perf_counter()
            r = local.client.post(url, files=[("files", (f"{i}.png", payloads[i % len(payloads)], "image/png"))])
            r.raise_for_status()
            return time.perf_counter() - s

        list(ThreadPoolExecutor(args.c).map(one, range(min(10, args.n))))  # warm-up
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.c) as pool:
            http_lat = list(pool.map(one, range(args.n)))
        wall_http = time.perf_counter() - t0
        server.should_exit = True
        thread.join(timeout=10)

    store = "on" if args.store else "off"
    print(f"model {model.name}; {args.n} requests of one {args.size}x{args.size} PNG; store {store}")
    print(f"in-process (1 thread):        {inproc}")
    print(f"HTTP /v1/detect (c={args.c}):      {_stats(http_lat, wall_http)}")
    print(f"ratio server / in-process throughput: {(args.n / wall_http) / (args.n / wall_inproc):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
