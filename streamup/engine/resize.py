"""Exact integer-factor downscale with OpenCV's ``INTER_LANCZOS4`` arithmetic, in torch.

The official ``RealESRGANer`` reaches an output scale below the network's (``outscale``) by rounding the
network output to 8/16 bit and resizing it with ``cv2.resize(..., INTER_LANCZOS4)``. OpenCV is not a
runtime dependency (and would pull the frame off the GPU), so this module reproduces that resize bit for bit:
for a factor ``k`` every output pixel sits at source ``k*d + (k-1)/2``, so all output pixels share one set of
8 lanczos weights, applied separably with edge pixels replicated. 8-bit input uses OpenCV's fixed point
(weights scaled by 2^11 and rounded, a rounding shift by 22 bits after both passes); 16-bit uses float.
"""

from __future__ import annotations

import math

import torch

_COEF_BITS = 11


def lanczos4_weights(fraction: float) -> list[float]:
    """OpenCV's ``interpolateLanczos4`` for a source offset ``fraction`` in [0, 1): 8 taps at -3..+4."""
    if fraction < 1e-7:
        return [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    s45 = math.sqrt(0.5)
    cs = [(1, 0), (-s45, -s45), (0, 1), (s45, -s45), (-1, 0), (s45, s45), (0, -1), (-s45, s45)]
    y0 = -(fraction + 3) * math.pi * 0.25
    s0, c0 = math.sin(y0), math.cos(y0)
    coeffs = []
    for i in range(8):
        y = -(fraction + 3 - i) * math.pi * 0.25
        coeffs.append(float(torch.tensor((cs[i][0] * s0 + cs[i][1] * c0) / (y * y), dtype=torch.float32)))
    total = float(torch.tensor(sum(coeffs), dtype=torch.float32))
    return [float(torch.tensor(c * (1.0 / total), dtype=torch.float32)) for c in coeffs]


def downscale(image: torch.Tensor, factor: int) -> torch.Tensor:
    """Shrink an integer image tensor ``N x C x H x W`` (values of uint8 or uint16 range) by ``factor``.

    ``torch.uint8`` input gets OpenCV's 8-bit fixed point; anything else is treated as 16-bit data (float).
    Returns the same dtype, ``H/factor x W/factor`` (the caller passes exact multiples). Frames are shrunk one
    at a time: a 4K network output in 64-bit integers is ~0.8 GB, a batch of them would not be.
    """
    if factor == 1:
        return image
    return torch.cat([_downscale_one(image[i : i + 1], factor) for i in range(image.shape[0])])


def _downscale_one(image: torch.Tensor, factor: int) -> torch.Tensor:
    weights = lanczos4_weights((factor - 1) / 2 % 1.0)
    first = math.floor((factor - 1) / 2) - 3  # source offset of tap 0 from factor * d
    if image.dtype == torch.uint8:
        taps = [round(w * (1 << _COEF_BITS)) for w in weights]
        # rows fit int32 (255 * sum|taps| < 2^20); the second pass needs int64 (up to ~3.1e9)
        rows = _pass(image.to(torch.int32), taps, factor, first, dim=3, acc_dtype=torch.int32)
        out = _pass(rows, taps, factor, first, dim=2, acc_dtype=torch.int64)
        out = torch.div(out + (1 << (2 * _COEF_BITS - 1)), 1 << (2 * _COEF_BITS), rounding_mode="floor")
        return out.clamp_(0, 255).to(torch.uint8)
    work = image.to(torch.float32)
    out = _pass(
        _pass(work, weights, factor, first, 3, torch.float32), weights, factor, first, 2, torch.float32
    )
    return out.round_().clamp_(0, 65535).to(image.dtype)


def _pass(
    work: torch.Tensor,
    taps: list[float] | list[int],
    factor: int,
    first: int,
    dim: int,
    acc_dtype: torch.dtype,
) -> torch.Tensor:
    """One separable pass along ``dim`` (2 = rows, 3 = columns); sources beyond an edge repeat the edge."""
    size = work.shape[dim]
    base = torch.arange(size // factor, device=work.device) * factor + first
    acc = torch.zeros((), dtype=acc_dtype, device=work.device)
    for k, tap in enumerate(taps):
        acc = acc + work.index_select(dim, (base + k).clamp_(0, size - 1)).to(acc_dtype) * tap
    return acc
