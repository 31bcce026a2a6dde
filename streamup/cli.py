"""``streamup``: the command line face of ``streamup.upscale`` (plus ``doctor`` and ``models``).

Scripts depend on its contract: exit 0 on success, 2 for bad usage or an input that is not a usable video,
1 for other failures, 130/143 after SIGINT/SIGTERM (the run stops and leaves no output); every error is one
line ``streamup: error: ...`` on stderr, with a traceback only under ``--debug``. The environment is read
once, into the ``Config`` that ``main`` hands every command.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from streamup import many, tiers
from streamup.config import Config
from streamup.errors import Cancelled, StreamupError, UsageError, one_line
from streamup.observe import JobRef, Observer, job_id_for, run_observed
from streamup.options import BACKENDS, DEINTERLACE, DEVICES, PRECISIONS, REUSE, SCALES, UpscaleOptions
from streamup.progress import BarProgress, LogProgress, configure_logging
from streamup.tiers import TIERS, options_for
from streamup.version import __version__
from streamup.worker import cli as worker_cli

if TYPE_CHECKING:
    from streamup.pipeline import UpscaleResult

log = logging.getLogger("streamup")

EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one ``streamup: error:`` line and exit 2, like every other error."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _parser(cfg: Config | None = None) -> argparse.ArgumentParser:
    """The command line; ``cfg`` gives the defaults the environment sets (``--metrics-port``...; None:
    read the environment now)."""
    cfg = cfg or Config.from_environ()
    p = _Parser(prog="streamup", description="Upscale videos 2x/4x with Real-ESRGAN models, audio untouched.")
    p.add_argument("--version", action="version", version=f"streamup {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    up = sub.add_parser("upscale", help="upscale INPUT into OUTPUT (container from OUTPUT's extension)")
    up.add_argument("input", metavar="INPUT", nargs="+",
                    help="local path, s3://bucket/key or https:// URL; several: OUTPUT is a folder")
    up.add_argument("output", metavar="OUTPUT",
                    help="local path or s3://bucket/key (.mp4 .mov .mkv .webm); a folder (or a name ending "
                         "in /) takes every INPUT as FOLDER/<name>, skipping outputs already there")
    engine = up.add_argument_group("model, device and engine (a tier fills what is not given)")
    engine.add_argument("--scale", type=int, choices=SCALES, help="enlargement (default 2, or the tier's)")
    engine.add_argument("--device", choices=DEVICES, help="where the model runs (default auto)")
    engine.add_argument("--model", metavar="NAME|PATH", help="official model name, a .pth file, or lanczos")
    engine.add_argument("--backend", choices=BACKENDS,
                        help="what runs the model (default auto: lanczos for --model lanczos, else torch)")
    engine.add_argument("--tier", choices=tuple(TIERS), help="defaults for device, scale, model, tile")
    engine.add_argument("--tile", type=int, metavar="N", help="tile size in input pixels (0 = whole frames)")
    engine.add_argument("--tile-pad", type=int, metavar="N", help="overlap around each tile in input pixels")
    engine.add_argument("--batch", type=int, metavar="N", help="frames (or tiles) per forward pass")
    engine.add_argument("--lanes", type=int, metavar="N",
                        help="concurrent forward passes; on a CPU each gets cores/N threads (default 2)")
    engine.add_argument("--precision", choices=PRECISIONS, default="auto")
    engine.add_argument("--require-gpu", action="store_true", help="fail instead of falling back to the CPU")
    engine.add_argument("--weights-dir", action="append", default=[], metavar="DIR",
                        help="look for weights here")
    engine.add_argument("--reuse", choices=REUSE, default="auto",
                        help="auto: keep the output of tiles whose input is unchanged (default); off: all")
    encoding = up.add_argument_group("the picture and its encoding (default: like the source)")
    encoding.add_argument("--codec", metavar="NAME",
                          help="video encoder (default per container; ffv1 = lossless)")
    encoding.add_argument("--crf", type=int, metavar="N", help="constant-quality level of the video encoder")
    encoding.add_argument("--preset", metavar="NAME",
                          help="encoder speed preset (x264/x265 names; VP9 cpu-used)")
    encoding.add_argument("--pix-fmt", metavar="NAME",
                          help="output pixel format, e.g. yuv420p (default: the source's chroma, depth, "
                               "alpha)")
    encoding.add_argument("--deinterlace", choices=DEINTERLACE,
                          help="interlaced input: auto = bwdif at frame rate (default), field = a frame "
                               "per field")
    encoding.add_argument("--drop-alpha", action="store_true",
                          help="write no alpha channel even if the source has one")
    running = up.add_argument_group("how the run goes and what it prints")
    running.add_argument("--segment-seconds", type=float, metavar="S",
                         help="upscale in keyframe-aligned segments of about S seconds, then stitch them "
                              "(a re-run reuses finished segments; docs/fanout.md)")
    running.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    running.add_argument("--log-format", choices=("text", "json"), default="text")
    running.add_argument("--debug", action="store_true", help="show tracebacks")
    observed = up.add_argument_group("Prometheus metrics of the run")
    observed.add_argument("--metrics-port", type=int, default=cfg.metrics_port, metavar="PORT",
                          help="serve Prometheus /metrics on this port while the run lasts")
    observed.add_argument("--metrics-linger", type=float, default=cfg.metrics_linger_s,
                          metavar="S", help="keep /metrics up S seconds after the run, for a last scrape")
    observed.add_argument("--pushgateway", default=cfg.pushgateway, metavar="URL",
                          help="push the final metrics to this Prometheus Pushgateway, grouped by job id")

    doc = sub.add_parser("doctor", help="check torch, CUDA, bf16, PyAV codecs and weights")
    doc.add_argument("--weights-dir", action="append", default=[], metavar="DIR")
    doc.add_argument("--debug", action="store_true")

    worker_cli.add_parser(sub, cfg)

    mod = sub.add_parser("models", help="list models and where their weights are; `models download NAME`")
    mod.add_argument("action", nargs="?", choices=("list", "download"), default="list")
    mod.add_argument("name", nargs="?", metavar="NAME")
    mod.add_argument("--weights-dir", action="append", default=[], metavar="DIR")
    mod.add_argument("--debug", action="store_true")
    return p


def options_from_args(args: argparse.Namespace, cfg: Config | None = None) -> UpscaleOptions:
    """Explicit flags win; a tier (with ``cfg``'s overrides; None: the environment's) fills what the flags
    left unset; the engine decides the rest."""
    return options_for(
        args.tier,
        cfg,
        scale=args.scale,
        model=args.model,
        backend=args.backend,
        device=args.device,
        precision=args.precision,
        require_gpu=args.require_gpu,
        tile=args.tile,
        tile_pad=args.tile_pad,
        batch=args.batch,
        lanes=args.lanes,
        codec=args.codec,
        pix_fmt=args.pix_fmt,
        deinterlace=args.deinterlace,
        drop_alpha=args.drop_alpha or None,
        crf=args.crf,
        preset=args.preset,
        weights_dirs=tuple(args.weights_dir),
        reuse=args.reuse,
    )


def _upscale(args: argparse.Namespace, cfg: Config) -> int:
    options = options_from_args(args, cfg)
    job = JobRef(id=job_id_for(args.output), tier=args.tier or "none", device=options.device)
    cancel = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if cancel.is_set():  # a second Ctrl-C: stop waiting for the stages to wind down
            raise KeyboardInterrupt
        received.append(signum)
        cancel.set()

    batch = many.is_many(args.input, args.output)
    if batch and args.segment_seconds:
        raise UsageError("--segment-seconds takes one INPUT and one OUTPUT file")
    within_limits = _tier_limits(args.tier, options.scale, cfg)
    if not batch and within_limits is not None:
        within_limits(args.input[0])  # before the model loads
    previous = {s: signal.signal(s, on_signal) for s in EXIT_SIGNAL}
    reporter = None if batch else _reporter(args)
    observing: contextlib.AbstractContextManager[list[Observer]] = contextlib.nullcontext([])
    if args.metrics_port is not None or args.pushgateway:
        from streamup import metrics  # prometheus_client: imported only by a run that exports metrics

        observing = metrics.one_shot(job.id, port=args.metrics_port, pushgateway=args.pushgateway,
                                     linger_s=args.metrics_linger, stop=cancel, host=cfg.http_host)
    try:
        with observing as observers:
            if batch:
                return many.run(args.input, args.output, options, job=job, observers=observers,
                                reporter=lambda: _reporter(args), cancel=cancel, on_done=_wrote,
                                check=within_limits, config=cfg).exit_code
            if args.segment_seconds:
                from fractions import Fraction

                from streamup.fanout.inprocess import run_local

                result = run_local(args.input[0], args.output, options, Fraction(str(args.segment_seconds)),
                                   job=job, observers=observers, progress=reporter, cancel=cancel,
                                   config=cfg)
            else:
                result = run_observed(job, observers, args.input[0], args.output, options, progress=reporter,
                                      cancel=cancel, config=cfg)
    except Cancelled as e:
        signum = received[0] if received else signal.SIGINT
        err = Cancelled(f"{e} ({signal.Signals(signum).name})")
        err.exit_code = EXIT_SIGNAL[signum]
        raise err from None
    finally:
        if reporter is not None:
            reporter.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    _wrote(result)
    return 0


def _tier_limits(tier: str | None, scale: int, cfg: Config) -> Callable[[str], None] | None:
    """The limits an operator set for ``tier`` (``STREAMUP_TIER_<TIER>_MAX_*``) as a check of one source
    (``Refused``, exit 2), or None: a local user has no limits unless an operator set them, so the tier
    table's own defaults (the worker's) do not apply here."""
    if tier is None:
        return None
    limits = tiers.limits(tier, cfg, defaults=False)
    if all(getattr(limits, f) is None for f in tiers.LIMIT_FIELDS):
        return None
    from streamup.pipeline.probe import probe  # PyAV: only when a limit is set
    from streamup.worker.admission import check_limits

    return lambda source: check_limits(limits, scale, probe(source))


def _reporter(args: argparse.Namespace) -> BarProgress | LogProgress | None:
    """One run's progress display: a bar on a terminal, sparse log lines elsewhere, none if asked."""
    if args.no_progress:
        return None
    tty = args.log_format == "text" and sys.stderr.isatty()
    return BarProgress(sys.stderr) if tty else LogProgress()


def _wrote(result: UpscaleResult) -> None:
    """The line (or JSON record) that says a file was written."""
    out = result.output
    log.info(
        "wrote %s: %d frames, %dx%d %s %s, %s x%d, %.1f s (%.2f fps)",
        result.destination, result.frames, out.width, out.height, out.codec, out.pix_fmt,
        result.model, result.scale, result.seconds, result.fps,
        extra={"fields": {"event": "done", "output": result.destination, "frames": result.frames,
                          "seconds": round(result.seconds, 3), "fps": round(result.fps, 3),
                          "model": result.model, "scale": result.scale, "dropped": list(out.dropped)}},
    )


def _doctor(args: argparse.Namespace, cfg: Config) -> int:
    from streamup import doctor

    checks = doctor.run(args.weights_dir, cfg)
    for c in checks:
        print(f"{c.status:<4} {c.name}: {c.detail}")
    failed = [c.name for c in checks if c.status == "FAIL"]
    if failed:
        raise StreamupError(f"not usable: {', '.join(failed)}")
    print("streamup is ready")
    return 0


def _models(args: argparse.Namespace, cfg: Config) -> int:
    from streamup.engine import weights

    if args.action == "download":
        if not args.name:
            raise UsageError("models download needs a NAME (see `streamup models`)")
        print(weights.download(args.name, config=cfg))
        return 0
    for m in weights.list_models(args.weights_dir, config=cfg):
        where = "not downloaded"
        if m.path:
            where = f"{m.path} ({m.source}, {'checksum ok' if m.sha_ok else 'CHECKSUM MISMATCH'})"
        print(f"{m.name:<28} x{m.scale} {m.arch:<8} {where}")
    return 0


def _worker(args: argparse.Namespace, cfg: Config) -> int:
    """The worker composed: its metrics (one observer for all its jobs, ``/metrics`` beside its health
    routes), the fan-out as a job hook, the admission policy (hostile jobs refused before any fetch) and,
    on EC2, scale-in protection as a busy hook; the worker imports none of them."""
    from streamup import metrics
    from streamup.fanout import hook as fanout
    from streamup.worker.admission import Admission
    from streamup.worker.scalein import ScaleInProtection

    observer = metrics.process_metrics()
    bucket = args.bucket or cfg.bucket
    admit = Admission.from_config(cfg, bucket) if bucket else None  # no bucket: the worker refuses to start
    protection = ScaleInProtection.from_config(cfg)
    try:
        return worker_cli.run(args, [observer], {"/metrics": observer.route}, job_hooks=[fanout.handle],
                              admit=admit, busy_hooks=[protection] if protection else [], config=cfg)
    finally:
        if protection is not None:
            protection.close()  # lifts the protection on the way out


COMMANDS: dict[str, Callable[[argparse.Namespace, Config], int]] = {
    "upscale": _upscale, "doctor": _doctor, "models": _models, "worker": _worker}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; as the process's own command line (``argv`` None) with torch loaded, end the process
    here rather than through the interpreter's teardown (``_exit_now``)."""
    code = _main(argv)
    if argv is None and "torch" in sys.modules:
        _exit_now(code)
    return code


def _exit_now(code: int) -> None:
    """Flush the logs and streams and end the process with ``code``, skipping the interpreter's teardown.

    With torch and spandrel imported, finalising the interpreter (module teardown, a last collection) takes
    0.8-1.5 s after the output is already published (``exit_after_output_s`` in benchmarks/startup.py; 1.0 s
    for a bare ``import torch, spandrel`` against 0.05 s for ``os._exit``, 2-core EPYC): a tenth of a short
    command. Nothing is left to run by then (stage threads joined, the sink committed, metrics pushed, the
    /metrics server closed); should another non-daemon thread still be alive, the normal exit joins it.
    """
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        return
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _main(argv: Sequence[str] | None) -> int:
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        cfg = Config.from_environ(os.environ)
        args = _parser(cfg).parse_args(argv)
        configure_logging(getattr(args, "log_format", "text"), sys.stderr)
        if debug:
            log.setLevel(logging.DEBUG)
        return COMMANDS[args.command](args, cfg)
    except StreamupError as e:
        if debug:
            traceback.print_exc()
        print(f"streamup: error: {one_line(e)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("streamup: error: interrupted; no output written", file=sys.stderr)
        return EXIT_SIGNAL[signal.SIGINT]
    except Exception as e:
        if debug:
            traceback.print_exc()
        print(f"streamup: error: {one_line(e)}", file=sys.stderr)
        return 1
