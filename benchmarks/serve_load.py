"""HTTP service load: throughput and latency of single-image ``POST /v1/detect`` against the same work done
in-process, each in a process of its own, with the same concurrency.

    python benchmarks/serve_load.py                    # 3 rounds x 100 requests, concurrency 2, 512x512 PNG
    python benchmarks/serve_load.py -n 200 -c 4 --rounds 5 --size 1024
    python benchmarks/serve_load.py --store            # result store on (repeat uploads become lookups)
    python benchmarks/serve_load.py --src /tmp/before/src   # another checkout's server and scorer

* **A, server**: ``gendetect``'s app under uvicorn in a subprocess on 127.0.0.1; this process is the client, with
  ``-c`` threads each sending one request at a time over a kept-alive connection.
* **B, in-process**: another subprocess that loads the same model and runs ``-c`` threads doing what the endpoint
  does for each upload (``UploadScorer.score_upload``: hash, store lookup, decode, score, evidence), on the same
  bytes, with no HTTP.

A and B alternate (A B, then B A, ...) for ``--rounds`` rounds after a warm-up of each; the table gives the
median of each, and the ratio server / in-process of the median throughputs, with the machine's load average
before and after (other work on the machine moves these numbers: read the ratio, not the absolute rates).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SERVER = """
import sys, uvicorn
from gendetect.server.app import ServerSettings, create_app
db, port, store = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
app = create_app(None, ServerSettings(db_url=db, use_store=store))
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
"""

# Reads payload files and round commands on stdin; answers one JSON line per round.
INPROC = """
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
from gendetect.pipeline import load_model
db, store, paths = sys.argv[1], sys.argv[2] == "1", sys.argv[3:]
payloads = [open(p, "rb").read() for p in paths]
model = load_model()
try:  # the endpoint's own per-upload work
    from gendetect.server.app import ServerSettings, UploadScorer
    from gendetect.server.store import ResultStore
    from gendetect.server.uploads import Upload
    scorer = UploadScorer(model, ServerSettings(db_url=db, use_store=store), ResultStore(db) if store else None)
    def work(i):
        out = scorer.score_upload(Upload("files", f"{i}.png", bytearray(payloads[i % len(payloads)])))
        assert out["status"] == "ok", out
except ImportError:  # an older checkout: its endpoint decoded and scored
    from gendetect.imageio import load_image_with_info
    def work(i):
        image, _ = load_image_with_info(payloads[i % len(payloads)])
        model.predict_proba([image])
print("ready", flush=True)
for line in sys.stdin:
    n, c, offset = map(int, line.split())
    def one(i):
        s = time.perf_counter(); work(offset + i); return time.perf_counter() - s
    t0 = time.perf_counter()
    with ThreadPoolExecutor(c) as pool:
        lat = list(pool.map(one, range(n)))
    print(json.dumps({"wall": time.perf_counter() - t0, "lat": lat}), flush=True)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(src: Path | None) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if src is not None:
        env["PYTHONPATH"] = f"{src}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return env


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class HttpSide:
    def __init__(self, src: Path | None, db: str, store: bool, payloads: list[bytes], timeout: float) -> None:
        import httpx

        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, db, str(self.port), "1" if store else "0"], env=_env(src)
        )
        self.url = f"http://127.0.0.1:{self.port}/v1/detect"
        self.payloads, self.timeout = payloads, timeout
        self._local = threading.local()
        self._httpx = httpx
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.2)

    def _one(self, i: int) -> float:
        if not hasattr(self._local, "client"):
            self._local.client = self._httpx.Client(timeout=self.timeout)
        s = time.perf_counter()
        r = self._local.client.post(
            self.url, files=[("files", (f"{i}.png", self.payloads[i % len(self.payloads)], "image/png"))]
        )
        r.raise_for_status()
        return time.perf_counter() - s

    def run(self, n: int, c: int, offset: int) -> tuple[float, list[float], float, float]:
        """Wall seconds, latencies, and CPU seconds of the server and of this client process."""
        t0, cpu0, client0 = time.perf_counter(), _cpu(self.proc.pid), time.process_time()
        with ThreadPoolExecutor(c) as pool:
            lat = list(pool.map(self._one, range(offset, offset + n)))
        wall = time.perf_counter() - t0
        return wall, lat, _cpu(self.proc.pid) - cpu0, time.process_time() - client0

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class InProcessSide:
    def __init__(self, src: Path | None, db: str, store: bool, files: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", INPROC, db, "1" if store else "0", *files],
            env=_env(src),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the in-process worker did not start")

    def run(self, n: int, c: int, offset: int) -> tuple[float, list[float], float, float]:
        cpu0 = _cpu(self.proc.pid)
        self.proc.stdin.write(f"{n} {c} {offset}\n")
        self.proc.stdin.flush()
        r = json.loads(self.proc.stdout.readline())
        return r["wall"], r["lat"], _cpu(self.proc.pid) - cpu0, 0.0

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=100, help="requests per round and side")
    parser.add_argument("-c", type=int, default=2, help="concurrent requests (both sides)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--store", action="store_true", help="keep the result store on")
    parser.add_argument("--src", type=Path, default=None, help="a checkout's src/ to run instead of this one")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    args = parser.parse_args(argv)
    from gendetect.data.synthetic import synthetic_image

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        files, payloads = [], []
        for i in range(50):  # distinct images, so that no request is a repeat (unless --store measures lookups)
            buf = io.BytesIO()
            synthetic_image("real" if i % 2 else "fake", args.size, seed=i).save(buf, "PNG")
            path = Path(tmp) / f"{i}.png"
            path.write_bytes(buf.getvalue())
            files.append(str(path))
            payloads.append(buf.getvalue())
        http = HttpSide(args.src, f"sqlite:///{Path(tmp) / 'a.sqlite'}", args.store, payloads, args.timeout)
        inproc = InProcessSide(args.src, f"sqlite:///{Path(tmp) / 'b.sqlite'}", args.store, files)
        sides = {"server": http, "in-process": inproc}
        results: dict[str, list[tuple[float, list[float], float, float]]] = {k: [] for k in sides}
        try:
            for side in sides.values():  # warm-up: first requests, caches, thread pools
                side.run(min(10, args.n), args.c, 0)
            for r in range(args.rounds):
                order = ["server", "in-process"] if r % 2 == 0 else ["in-process", "server"]
                for name in order:
                    results[name].append(sides[name].run(args.n, args.c, 10 + r * args.n))
        finally:
            http.close()
            inproc.close()
    load_after = os.getloadavg()
    kb = sum(len(p) for p in payloads) / len(payloads) / 1024
    print(
        f"{args.rounds} rounds x {args.n} requests of one {args.size}x{args.size} PNG ({kb:.0f} KB), "
        f"concurrency {args.c}, store {'on' if args.store else 'off'}; server and in-process each in its own process"
    )
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} CPUs)")
    rates: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for name, rounds in results.items():
        per_round = [args.n / r[0] for r in rounds]
        lat = [x * 1000 for r in rounds for x in r[1]]
        rates[name] = statistics.median(per_round)
        cpu[name] = statistics.median(r[2] for r in rounds) / args.n * 1000
        client = statistics.median(r[3] for r in rounds) / args.n * 1000
        print(
            f"{name:<11} median {rates[name]:6.1f} req/s (rounds: {', '.join(f'{x:.1f}' for x in per_round)})   "
            f"p50 {_pct(lat, 0.5):6.1f} ms   p99 {_pct(lat, 0.99):6.1f} ms   CPU/request {cpu[name]:5.1f} ms"
            + (f" (+ client {client:.1f} ms)" if name == "server" else "")
        )
    ratios = [(args.n / a[0]) / (args.n / b[0]) for a, b in zip(results["server"], results["in-process"])]
    print(
        f"ratio server / in-process throughput: {rates['server'] / rates['in-process']:.2f} "
        f"(per round: {', '.join(f'{x:.2f}' for x in ratios)}); "
        f"CPU per request in-process / server: {cpu['in-process'] / cpu['server']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
