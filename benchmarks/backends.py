"""Other CPU backends for the same weights: ONNX Runtime, OpenVINO, ``torch.compile`` against torch eager.

The question (issue 10): is any of them >= 1.5x faster than what the engine runs now, at >= 45 dB parity?
Each backend runs the bare network on the same RGB crop of a real frame, one thread, interleaved rounds,
median process CPU time (the machine is shared: wall time measures the neighbours). Parity: PSNR of each
backend's 8-bit output against torch fp32 eager. Compile/export time is reported apart (it is paid once per
process; a worker amortises it, a one-clip CLI run does not).

  .venv/bin/python -m benchmarks.backends [--model animevideov3] [--crop 320x180] [--rounds 5]

Needs ``pip install onnxruntime openvino onnx`` (not extras of the package: nothing here ships).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import common
from benchmarks.measure import clock, decode, since


def to_uint8(y: np.ndarray) -> np.ndarray:
    return (np.clip(y.astype(np.float32), 0, 1) * 255).round().astype(np.uint8)


def backends(key: str, x_np: np.ndarray, tmp: Path) -> dict[str, tuple[Callable[[], np.ndarray], float]]:
    """name -> (a call returning the float output as numpy, seconds spent preparing it)."""
    import spandrel
    import torch

    net = spandrel.ModelLoader().load_from_file(str(common.MODELS[key].weights)).model.eval()
    x = torch.from_numpy(x_np)
    xc = x.contiguous(memory_format=torch.channels_last)
    netc = net.to(memory_format=torch.channels_last)
    out: dict[str, tuple[Callable[[], np.ndarray], float]] = {}

    def eager(model: Any, inp: torch.Tensor, bf16: bool) -> Callable[[], np.ndarray]:
        def call() -> np.ndarray:
            ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
            with torch.inference_mode(), ctx:
                return model(inp).float().numpy()
        return call

    out["torch fp32 (eager, channels_last)"] = (eager(netc, xc, False), 0.0)
    out["torch bf16 autocast (the engine)"] = (eager(netc, xc, True), 0.0)
    with contextlib.suppress(Exception):
        begin = clock()
        compiled = torch.compile(netc, dynamic=False)
        call = eager(compiled, xc, True)
        call()  # compiles
        out["torch.compile bf16 autocast"] = (call, since(begin)[0])
    onnx_path = tmp / f"{key}.onnx"
    begin = clock()
    torch.onnx.export(net, (x,), str(onnx_path), input_names=["x"], output_names=["y"], opset_version=17,
                      dynamo=False)
    export_s = since(begin)[0]
    with contextlib.suppress(ImportError):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        begin = clock()
        session = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
        out["onnxruntime fp32"] = (lambda: session.run(None, {"x": x_np})[0], export_s + since(begin)[0])
    with contextlib.suppress(ImportError):
        import openvino as ov

        core = ov.Core()
        for hint in ("f32", "bf16"):
            begin = clock()
            compiled_ov = core.compile_model(str(onnx_path), "CPU", {
                "INFERENCE_NUM_THREADS": 1, "INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"})
            request = compiled_ov.create_infer_request()

            def run_ov(request: Any = request) -> np.ndarray:
                return np.array(request.infer({0: x_np})[0])

            out[f"openvino {hint}"] = (run_ov, export_s + since(begin)[0])
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    src = common.MEDIA / "sr_gt_640x360.mkv"
    frame = decode(str(src), 1, args.crop)[0]
    x_np = np.ascontiguousarray(frame.transpose(2, 0, 1)[None].astype(np.float32) / 255)
    with tempfile.TemporaryDirectory() as tmp:
        calls = backends(args.model, x_np, Path(tmp))
        reference = to_uint8(calls["torch fp32 (eager, channels_last)"][0]())
        times: dict[str, list[float]] = {name: [] for name in calls}
        psnr: dict[str, float] = {}
        for name, (call, _) in calls.items():
            from tests.engine.util import psnr as psnr_db

            psnr[name] = psnr_db(to_uint8(call()), reference)
        names = list(calls)
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                begin = clock()
                calls[name][0]()
                times[name].append(since(begin)[1])
    h, w = frame.shape[:2]
    scale = 640 * 360 / (w * h)
    rows = {
        name: {"cpu_s_per_640x360": statistics.median(t) * scale, "cpu_s": t, "prepare_s": calls[name][1],
               "psnr_vs_torch_fp32_db": psnr[name]}
        for name, t in times.items()
    }
    return {"benchmark": "backends", "machine": common.machine(), "model": args.model, "crop": f"{w}x{h}",
            "rounds": args.rounds, "load_avg_1m": os.getloadavg()[0], "backends": rows,
            "command": f".venv/bin/python -m benchmarks.backends --model {args.model} --crop {args.crop} "
            f"--rounds {args.rounds}",
            "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def markdown(result: dict[str, Any]) -> str:
    engine = result["backends"]["torch bf16 autocast (the engine)"]["cpu_s_per_640x360"]
    lines = [
        f"## Other CPU backends ({common.machine_line(result['machine'])})",
        "",
        f"{result['model']}, bare network on a {result['crop']} crop of sr_gt_640x360.mkv, 1 thread, median "
        f"CPU-s of {result['rounds']} interleaved rounds scaled to a 640x360 frame; load average "
        f"{result['load_avg_1m']:.1f} at the end.",
        "",
        "| backend | CPU-s / 640x360 frame | speed vs the engine's torch bf16 | export + compile s | "
        "PSNR vs torch fp32 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, row in result["backends"].items():
        cost = row["cpu_s_per_640x360"]
        lines.append(f"| {name} | {cost:.2f} | {engine / cost:.2f}x | {row['prepare_s']:.1f} | "
                     f"{row['psnr_vs_torch_fp32_db']:.1f} dB |")
    return common.markdown_with_command(lines, result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=list(common.MODELS), default="animevideov3")
    parser.add_argument("--crop", default="320x180")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, help="result stem (default results/backends-cpu)")
    args = parser.parse_args()
    result = run(args)
    common.save_result(args.out or common.RESULTS / "backends-cpu", result, markdown(result))


if __name__ == "__main__":
    main()
