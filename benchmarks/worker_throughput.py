"""What a worker process gains over running the CLI once per job, and what ``--concurrency 2`` adds.

N identical jobs (the same clip under N keys, S3 in and S3 out through a local moto server) run three ways:

- ``cli``: ``streamup upscale s3://... s3://...`` N times one after another (each run imports torch and loads
  the model again: what a naive queue consumer that shells out would do);
- ``worker-c1`` / ``worker-c2``: one ``streamup worker --max-jobs N --concurrency C`` process draining a queue
  of N jobs (one model load; with C=2 one job's decode/encode can overlap the other's inference).

Wall time of each whole configuration (process start to exit, model loads included) gives jobs/hour and
frames/s; peak RSS is that of the process tree (sampled every 50 ms). Per-job seconds come from the
worker's SUCCEEDED events. The machine is whatever runs it: on a shared one, compare configurations
measured in the same session only.

    .venv/bin/python -m benchmarks.worker_throughput --jobs 6
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, RESULTS, WEIGHTS, machine, machine_line, run_tree, write_json
from tests.storage.s3_endpoint import s3_env, serve
from tests.worker.queues import clients, receive_all

STREAMUP = str(REPO / ".venv" / "bin" / "streamup")


def frames_of(path: Path) -> int:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip())


def summary(
    name: str, run: Any, jobs: int, frames: int, per_job: list[float] | None = None
) -> dict[str, Any]:
    result = {
        "config": name,
        "jobs": jobs,
        "wall_s": round(run.wall_s, 2),
        "cpu_s": round(run.cpu_s, 2),
        "jobs_per_hour": round(jobs / run.wall_s * 3600, 1),
        "frames_per_s": round(jobs * frames / run.wall_s, 3),
        "peak_rss_mib": round(run.peak_tree_rss_bytes / 2**20, 1),
        "load_average_after": list(os.getloadavg()),
    }
    if per_job is not None:
        result["job_seconds"] = per_job
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=6, help="jobs per configuration (default 6)")
    parser.add_argument("--clip", type=Path, default=REPO / "examples" / "sample.mp4")
    parser.add_argument("--model", default="realesr-animevideov3")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=RESULTS / "worker_throughput.json")
    args = parser.parse_args()
    frames = frames_of(args.clip)
    info = machine()
    print(
        f"machine: {machine_line(info)}; clip {args.clip.name} ({frames} frames), model {args.model}, "
        f"{args.jobs} jobs per configuration"
    )
    results: list[dict[str, Any]] = []
    with serve() as server:
        s3, sqs, bucket = clients(server.endpoint, "bench")
        inputs = [f"in/clip-{i}{args.clip.suffix}" for i in range(args.jobs)]
        for key in inputs:
            s3.upload_file(str(args.clip), bucket, key)
        env = {
            **os.environ,
            **s3_env(server.endpoint),
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "STREAMUP_WEIGHTS_DIR": str(WEIGHTS),
            "STREAMUP_OFFLINE": "1",
            "STREAMUP_TIER_BASIC_MODEL": args.model,
            "S3_BUCKET_NAME": bucket,
        }

        # The CLI's runs are children of a small Python parent so that run_tree sees them as one tree.
        script = (
            "import sys, subprocess\n"
            "for i, key in enumerate(sys.argv[3:]):\n"
            "    subprocess.run([sys.argv[1], 'upscale', f's3://{sys.argv[2]}/{key}',\n"
            "                    f's3://{sys.argv[2]}/out/cli-{i}.mp4', '--tier', 'basic', '--no-progress'],"
            " check=True)\n"
        )
        run = run_tree([sys.executable, "-c", script, STREAMUP, bucket, *inputs], env=env)
        results.append(summary("cli", run, args.jobs, frames))
        print(json.dumps(results[-1]))
        for concurrency in args.concurrency:
            queue = sqs.create_queue(
                QueueName=f"jobs-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "60"}
            )["QueueUrl"]
            status = sqs.create_queue(QueueName=f"status-{uuid.uuid4().hex[:8]}")["QueueUrl"]
            for i, key in enumerate(inputs):
                job = {
                    "jobId": f"c{concurrency}-{i}",
                    "inputKey": key,
                    "outputKey": f"out/w{concurrency}-{i}.mp4",
                    "parameters": {"device": "cpu", "scale_factor": 2},
                }
                sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(job))
            run = run_tree(
                [
                    STREAMUP,
                    "worker",
                    "--max-jobs",
                    str(args.jobs),
                    "--concurrency",
                    str(concurrency),
                    "--poll-seconds",
                    "1",
                    "--preload",
                    "basic",
                ],
                env={**env, "SQS_QUEUE_URL": queue, "STATUS_QUEUE_URL": status},
            )
            events = receive_all(sqs, status)
            done = [e for e in events if e["status"] == "SUCCEEDED"]
            if len(done) != args.jobs:
                raise RuntimeError(
                    f"worker-c{concurrency}: {len(done)} of {args.jobs} jobs succeeded: {events}"
                )
            results.append(
                summary(f"worker-c{concurrency}", run, args.jobs, frames, sorted(e["seconds"] for e in done))
            )
            print(json.dumps(results[-1]))
    best = max(results, key=lambda r: r["jobs_per_hour"])
    write_json(
        args.out,
        {
            "machine": info,
            "clip": args.clip.name,
            "frames_per_job": frames,
            "model": args.model,
            "scale": 2,
            "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": f".venv/bin/python -m benchmarks.worker_throughput --jobs {args.jobs}",
            "results": results,
            "fastest": best["config"],
        },
    )
    print(f"fastest: {best['config']}; wrote {args.out}")


if __name__ == "__main__":
    main()
