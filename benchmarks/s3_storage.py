"""Storage measurements for docs/storage.md: bytes fetched per demux, and peak RSS of S3 vs local runs.

Runs its own moto S3 server on 127.0.0.1 (the one the tests use, which counts every GET body byte sent).

    .venv/bin/python -m benchmarks.s3_storage ratio             # bytes served / object size, per reader
    .venv/bin/python -m benchmarks.s3_storage rss [CLIP] [MODEL] # peak RSS, S3->S3 vs local->local
    .venv/bin/python -m benchmarks.s3_storage seek FILE...       # what a player's seek costs over S3

``ratio`` demuxes each clip whole with PyAV through streamup's ranged reader and, for comparison, through
smart_open's S3 reader (default, and with ``range_chunk_size``). ``rss`` runs ``streamup upscale`` in a child
process for each pair and reads the child's peak RSS from ``wait4`` (ru_maxrss).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import boto3
import smart_open

from streamup.storage import open_source
from tests.conftest import MEDIA
from tests.storage.s3_endpoint import REGION, S3Server, s3_env, serve

CLIPS = ["faststart.mp4", "moov_at_end.mp4", "hevc_pcm_640x360.mov", "orig_chaplin_640x360_h264_mp3.mp4",
         "bench_1920x1080_h264_aac.mp4"]


def _demux_all(file: object) -> int:
    with av.open(file) as container:
        return sum(1 for p in container.demux() if p.size)


def _served(server: S3Server, key: str, read: object) -> tuple[float, int]:
    server.counter.reset()
    read()  # type: ignore[operator]
    gets = [g for g in server.counter.gets if g.path.endswith("/" + key)]
    return sum(g.bytes for g in gets), len(gets)


def ratio(server: S3Server) -> None:
    client = boto3.client("s3", endpoint_url=server.endpoint, region_name=REGION)
    client.create_bucket(Bucket="bench")
    print(f"{'clip':38} {'size':>9}  {'streamup':>16}  {'smart_open':>16}  {'smart_open 256K':>16}")
    for name in CLIPS:
        path = MEDIA / name
        size = path.stat().st_size
        client.put_object(Bucket="bench", Key=name, Body=path.read_bytes())
        uri = f"s3://bench/{name}"

        def ours(uri: str = uri) -> None:
            with open_source(uri) as source:
                _demux_all(source.file)

        def theirs(uri: str = uri, chunk: int | None = None) -> None:
            params = {"client": client, "range_chunk_size": chunk}
            with smart_open.open(uri, "rb", transport_params=params) as f:
                _demux_all(f)

        cells = []
        for read in (ours, theirs, lambda uri=uri: theirs(uri, 256 * 1024)):
            served, gets = _served(server, name, read)
            cells.append(f"{served / size:5.2f}x {gets:3d} GETs")
        print(f"{name:38} {size:9d}  " + "  ".join(f"{c:>16}" for c in cells))


def _peak_rss_mib(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    start = time.monotonic()
    proc = subprocess.Popen(argv, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(argv)}")
    return usage.ru_maxrss / 1024, time.monotonic() - start


def rss(server: S3Server, clip: str, model: str) -> None:
    client = boto3.client("s3", endpoint_url=server.endpoint, region_name=REGION)
    client.create_bucket(Bucket="bench")
    client.put_object(Bucket="bench", Key=clip, Body=(MEDIA / clip).read_bytes())
    env = {**os.environ, **s3_env(server.endpoint)}
    streamup = [sys.executable, "-m", "streamup", "upscale", "--no-progress", "--model", model,
                "--scale", "2"]
    out_name = Path(clip).stem + "_x2.mp4"
    with tempfile.TemporaryDirectory() as tmp:
        pairs = {"local -> local": (str(MEDIA / clip), f"{tmp}/{out_name}"),
                 "s3 -> s3": (f"s3://bench/{clip}", f"s3://bench/{out_name}")}
        for label, (src, dst) in pairs.items():
            peak, seconds = _peak_rss_mib([*streamup, src, dst], env)
            print(f"{label:15} {clip} model={model}: peak RSS {peak:7.1f} MiB, {seconds:5.1f} s")


def seek(server: S3Server, files: list[str]) -> None:
    """Open each file over S3, seek to 1/3, 2/3 of its duration and decode one frame: what a player pays."""
    client = boto3.client("s3", endpoint_url=server.endpoint, region_name=REGION)
    client.create_bucket(Bucket="seek")
    for i, file in enumerate(files):
        key = f"{i}-{Path(file).name}"
        client.put_object(Bucket="seek", Key=key, Body=Path(file).read_bytes())
        size = Path(file).stat().st_size
        with av.open(file) as local:  # streamed Matroska has no duration in its header: measure it
            duration = max(float(p.pts * p.time_base) for p in local.demux(video=0) if p.pts is not None)
        server.counter.reset()
        landed = []
        with open_source(f"s3://seek/{key}") as source, av.open(source.file) as container:
            video = container.streams.video[0]
            opened = server.counter.served(key)
            for fraction in (1 / 3, 2 / 3):
                target = duration * fraction
                container.seek(int(target / video.time_base), stream=video)
                frame = next(container.decode(video))
                landed.append(f"{target:.2f}s->{float(frame.time):.2f}s{'K' if frame.key_frame else ''}")
        gets = len(server.counter.gets)
        print(f"{Path(file).name:28} {size:9d} B: open {opened / size:.2f}x, open+2 seeks "
              f"{server.counter.served(key) / size:.2f}x in {gets} GETs; landed {' '.join(landed)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("ratio")
    r = sub.add_parser("rss")
    r.add_argument("clip", nargs="?", default="main_h264_aac_640x360.mp4")
    r.add_argument("model", nargs="?", default="lanczos")
    s = sub.add_parser("seek")
    s.add_argument("files", nargs="+")
    args = parser.parse_args()
    with serve() as server:
        os.environ.update(s3_env(server.endpoint))
        if args.what == "ratio":
            ratio(server)
        elif args.what == "seek":
            seek(server, args.files)
        else:
            rss(server, args.clip, args.model)


if __name__ == "__main__":
    main()
