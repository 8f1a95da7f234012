"""Room storage over HTTP: a large upload and download through `manage.py serve` (daphne with the
request body streamed to the application, files/streaming.py) against stock daphne serving the
same ASGI application, in one run. Reported per server: seconds and the server process's peak RSS
growth (VmHWM, reset before each transfer) for the upload, the download, and a download whose
client reads nothing for 3 seconds (a stalled reader), plus a bare baseline:
copying the same number of bytes into a file on the same disk.

    .venv/bin/python bench/storage.py [--megabytes 200]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from relay import Meshsite, free_port  # noqa: E402

from tests.files.transfer import GeneratedBody, memory_kib, reset_peak  # noqa: E402


def stock_daphne(site: Meshsite) -> int:
    port = free_port()
    process = subprocess.Popen(
        [site.python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "meshsite.asgi:application"],
        cwd=ROOT,
        env=site.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    site.processes.append(process)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
            return port
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("daphne did not start")


def fresh_server(site: Meshsite, stock: bool) -> tuple[int, int]:
    """A new server process (so one measurement's freed memory cannot hide the next one's), warmed
    up with a small upload; returns (port, pid)."""
    for process in site.processes:
        process.terminate()
        process.wait(10)
    site.processes.clear()
    port = stock_daphne(site) if stock else site.serve()
    requests.put(
        url(port, "warmup.bin"), data=GeneratedBody(1024 * 1024), headers=site.bench_headers
    ).raise_for_status()
    return port, site.processes[-1].pid


def url(port: int, name: str = "big.bin") -> str:
    return f"http://127.0.0.1:{port}/api/v1/rooms/relay/files/users/bench/{name}"


def measure(site: Meshsite, stock: bool, size: int) -> dict[str, float]:
    headers = site.bench_headers
    port, pid = fresh_server(site, stock)
    reset_peak(pid)
    before = memory_kib(pid)
    body = GeneratedBody(size)
    started = time.monotonic()
    requests.put(url(port), data=body, headers=headers).raise_for_status()
    upload = time.monotonic() - started
    upload_growth = memory_kib(pid)["VmHWM"] - before["VmRSS"]

    port, pid = fresh_server(site, stock)
    reset_peak(pid)
    before = memory_kib(pid)
    digest = hashlib.sha256()
    started = time.monotonic()
    with requests.get(url(port), headers=headers, stream=True) as response:
        response.raise_for_status()
        for chunk in response.iter_content(1024 * 1024):
            digest.update(chunk)
    download = time.monotonic() - started
    download_growth = memory_kib(pid)["VmHWM"] - before["VmRSS"]
    assert digest.hexdigest() == body.digest.hexdigest()

    port, pid = fresh_server(site, stock)
    stalled_growth = stalled_reader_growth(port, pid, headers["Authorization"].split()[1])
    requests.delete(url(port), headers=headers).raise_for_status()
    return {
        "upload_s": upload,
        "upload_peak_growth_mib": upload_growth / 1024,
        "download_s": download,
        "download_peak_growth_mib": download_growth / 1024,
        "stalled_reader_peak_growth_mib": stalled_growth / 1024,
        "rss_before_mib": before["VmRSS"] / 1024,
    }


def stalled_reader_growth(port: int, pid: int, token: str) -> int:
    """Peak RSS growth (KiB) while a client requests the file and reads nothing for 3 s."""
    reset_peak(pid)
    before = memory_kib(pid)
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(
            f"GET /api/v1/rooms/relay/files/users/bench/big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n".encode()
        )
        time.sleep(3)
        peak = memory_kib(pid)["VmHWM"]
        while client.recv(1024 * 1024):
            pass
    return peak - before["VmRSS"]


def bare_copy_seconds(folder: Path, size: int) -> float:
    body = GeneratedBody(size)
    started = time.monotonic()
    with (folder / "bare.bin").open("wb") as out:
        while chunk := body.read(256 * 1024):
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=200)
    args = parser.parse_args()
    size = args.megabytes * 1024 * 1024
    with tempfile.TemporaryDirectory() as var:
        site = Meshsite(Path(var), None)
        try:
            site.prepare()
            site.bench_headers = {"Authorization": f"Bearer {site.token('bench')}"}  # type: ignore[attr-defined]
            print(f"{args.megabytes} MB, load {os.getloadavg()[0]:.1f}")
            print(f"bare copy to disk: {bare_copy_seconds(Path(var), size):.2f}s")
            for name, stock in (("manage.py serve (streamed bodies)", False), ("stock daphne", True)):
                figures = measure(site, stock, size)
                print(name + ": " + ", ".join(f"{key} {value:.1f}" for key, value in figures.items()))
        finally:
            for process in site.processes:
                process.terminate()
                process.wait(10)


if __name__ == "__main__":
    main()
