"""Server memory under hostile uploads: peak RSS and temporary-file use of ``gendetect serve`` in its own process.

    python benchmarks/serve_memory.py                     # this checkout's server
    python benchmarks/serve_memory.py --src /tmp/before   # another checkout's src/ (e.g. git archive HEAD~1 src)

Cases (each against a fresh server process, so that its peak RSS, VmHWM, belongs to that case alone):

* ``idle``: one small upload; the baseline.
* ``big-401``: 1 GiB body to ``/v1/detect`` with a wrong token (the server runs with ``--token``).
* ``big-413``: 1 GiB body with ``Content-Length``, no token needed (larger than every limit).
* ``parts``: 1,000 parts of 1 MiB with ``Content-Length``.
* ``parts-chunked``: the same body chunked (no ``Content-Length``): only a streaming cap can stop it.

For each: the status, how long until the answer, how much of the body the server let the client send, the server's
peak RSS, and the peak size of its temporary folder (``TMPDIR``, where Starlette spools large parts). Traffic goes
only to 127.0.0.1; every case is bounded by ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import io
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

MiB = 2**20
SERVER = "import sys; from gendetect.cli import main; sys.exit(main())"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _vm_hwm(pid: int) -> int:
    """Peak resident set size of a process (bytes), from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _dir_size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _open_tmp_size(pid: int, folder: Path) -> int:
    """Bytes in files under ``folder`` that the process holds open, unlinked ones included (Python's
    TemporaryFile unlinks its file at once, so listing the folder misses it)."""
    total, prefix = 0, str(folder)
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return 0
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(prefix):
                total += os.stat(f"/proc/{pid}/fd/{fd}").st_size
        except OSError:
            pass
    return total


class Server:
    """``gendetect serve`` in a subprocess with its own TMPDIR; ``src`` puts another checkout first on the path."""

    def __init__(self, src: Path | None, work: Path, token: str | None) -> None:
        self.port = _free_port()
        self.tmp = work / f"tmp-{self.port}"
        self.tmp.mkdir()
        env = {**os.environ, "TMPDIR": str(self.tmp), "GENDETECT_CACHE": str(work / "cache"), "HF_HUB_OFFLINE": "1"}
        if src is not None:
            env["PYTHONPATH"] = f"{src}{os.pathsep}{env.get('PYTHONPATH', '')}"
        cmd = [sys.executable, "-c", SERVER, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--db", f"sqlite:///{work / f'r-{self.port}.sqlite'}"]
        if token:
            cmd += ["--token", token]
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.peak_tmp = 0
        self._stop = threading.Event()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("server did not start in 60 s")
        self._watch = threading.Thread(target=self._watch_tmp, daemon=True)
        self._watch.start()

    def _watch_tmp(self) -> None:
        while not self._stop.is_set():
            self.peak_tmp = max(self.peak_tmp, _dir_size(self.tmp) + _open_tmp_size(self.proc.pid, self.tmp))
            time.sleep(0.05)

    def close(self) -> int:
        """Stop the server; its peak RSS in bytes."""
        hwm = _vm_hwm(self.proc.pid)
        self._stop.set()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return hwm


def _head(path: str, port: int, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def send(port: int, head: bytes, body: Iterable[bytes], timeout: float) -> tuple[int | None, float, int]:
    """Send ``head`` then the chunks of ``body``, stopping as soon as the server answers or hangs up.

    Returns (status or None, seconds until the answer, body bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(head)
    sent, t0, answer = 0, time.monotonic(), b""
    try:
        for chunk in body:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable or time.monotonic() - t0 > timeout:
                break
            try:
                sock.sendall(chunk)
            except OSError:  # the server closed the connection after answering
                break
            sent += len(chunk)
        sock.settimeout(max(1.0, timeout - (time.monotonic() - t0)))
        try:
            while b"\r\n" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except OSError:
            pass
    finally:
        sock.close()
    elapsed = time.monotonic() - t0
    try:
        status = int(answer.split(b" ", 2)[1])
    except (IndexError, ValueError):
        status = None
    return status, elapsed, sent


def _raw_body(total: int, chunk: int = MiB) -> Iterator[bytes]:
    block = b"\0" * chunk
    for _ in range(total // chunk):
        yield block


def _single_part(total: int, boundary: str) -> Iterator[bytes]:
    yield (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.png"\r\n\r\n').encode()
    yield from _raw_body(total)
    yield f"\r\n--{boundary}--\r\n".encode()


def _parts(n: int, size: int, boundary: str) -> Iterator[bytes]:
    data = b"\0" * size
    for i in range(n):
        yield (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{i}.png"\r\n'
                "Content-Type: image/png\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    yield f"--{boundary}--\r\n".encode()


def _chunked(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """HTTP/1.1 chunked transfer coding."""
    for c in chunks:
        yield f"{len(c):x}\r\n".encode() + c + b"\r\n"
    yield b"0\r\n\r\n"


def _length(gen: Iterable[bytes]) -> int:
    return sum(len(c) for c in gen)


def _png() -> bytes:
    from gendetect.data.synthetic import synthetic_image

    buf = io.BytesIO()
    synthetic_image("real", 128, seed=1).save(buf, "PNG")
    return buf.getvalue()


def run_case(name: str, args: argparse.Namespace, work: Path) -> dict:
    boundary = "gendetectBoundary"
    ctype = f"multipart/form-data; boundary={boundary}"
    token = "s3cret" if name == "big-401" else None
    server = Server(args.src, work, token)
    try:
        if name == "idle":
            png = _png()
            body = [
                (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n\r\n').encode()
                + png
                + f"\r\n--{boundary}--\r\n".encode()
            ]
            head = _head("/v1/detect", server.port, {"Content-Type": ctype, "Content-Length": str(len(body[0]))})
        elif name in ("big-401", "big-413"):
            total = args.big_mib * MiB
            length = _length(_single_part(0, boundary)) + total
            headers = {"Content-Type": ctype, "Content-Length": str(length)}
            if token:
                headers["Authorization"] = "Bearer wrong"
            head, body = _head("/v1/detect", server.port, headers), _single_part(total, boundary)
        elif name == "parts":
            length = _length(_parts(args.parts, 0, boundary)) + args.parts * args.part_mib * MiB
            head = _head("/v1/detect", server.port, {"Content-Type": ctype, "Content-Length": str(length)})
            body = _parts(args.parts, args.part_mib * MiB, boundary)
        elif name == "parts-chunked":
            head = _head("/v1/detect", server.port, {"Content-Type": ctype, "Transfer-Encoding": "chunked"})
            body = _chunked(_parts(args.parts, args.part_mib * MiB, boundary))
        else:
            raise ValueError(name)
        status, elapsed, sent = send(server.port, head, body, args.timeout)
        time.sleep(0.3)  # let the server finish (and free) whatever it was doing
    finally:
        peak = server.close()
        tmp_peak = server.peak_tmp
        shutil.rmtree(server.tmp, ignore_errors=True)
    return {
        "case": name,
        "status": status,
        "seconds": elapsed,
        "sent_mib": sent / MiB,
        "rss_mib": peak / MiB,
        "tmp_mib": tmp_peak / MiB,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, default=None, help="a checkout's src/ to run instead of this one")
    parser.add_argument("--big-mib", type=int, default=1024, help="size of the big upload")
    parser.add_argument("--parts", type=int, default=1000)
    parser.add_argument("--part-mib", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per case")
    parser.add_argument("--cases", default="idle,big-401,big-413,parts,parts-chunked")
    args = parser.parse_args(argv)
    which = args.src or Path(__file__).resolve().parents[1] / "src"
    print(f"server code: {which}; load average {os.getloadavg()[0]:.2f}", flush=True)
    print(f"{'case':<14} {'status':>6} {'seconds':>8} {'sent MiB':>9} {'peak RSS MiB':>13} {'peak tmp MiB':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases.split(","):
            r = run_case(name, args, Path(tmp))
            print(
                f"{r['case']:<14} {r['status']!s:>6} {r['seconds']:8.2f} {r['sent_mib']:9.0f} {r['rss_mib']:13.0f} "
                f"{r['tmp_mib']:13.0f}",
                flush=True,
            )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
