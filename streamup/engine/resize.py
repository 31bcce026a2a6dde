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

    ``eight_bit`` arithmetic is used when the tensor's dtype is ``torch.uint8``; anything else is treated as
    16-bit data. Returns the same dtype, ``H/factor x W/factor`` (the caller passes exact multiples).
    """
    if factor == 1:
        return image
    fraction = (factor - 1) / 2 % 1.0
    weights = lanczos4_weights(fraction)
    first = math.floor((factor - 1) / 2) - 3  # offset of tap 0 from k*d
    eight_bit = image.dtype == torch.uint8
    if eight_bit:
        taps = torch.tensor([round(w * (1 << _COEF_BITS)) for w in weights], dtype=torch.int64)
        work = image.to(torch.int64)
    else:
        taps = torch.tensor(weights, dtype=torch.float32)
        work = image.to(torch.float32)
    out = _pass(_pass(work, taps, factor, first, dim=3), taps, factor, first, dim=2)
    if eight_bit:
        out = torch.div(out + (1 << (2 * _COEF_BITS - 1)), 1 << (2 * _COEF_BITS), rounding_mode="floor")
        return out.clamp_(0, 255).to(torch.uint8)
    return out.round_().clamp_(0, 65535).to(image.dtype)


def _pass(work: torch.Tensor, taps: torch.Tensor, factor: int, first: int, dim: int) -> torch.Tensor:
    """One separable pass along ``dim`` (2 = rows, 3 = columns); sources beyond an edge repeat the edge."""
    size = work.shape[dim]
    base = torch.arange(size // factor, device=work.device) * factor + first
    acc = torch.zeros((), dtype=work.dtype, device=work.device)
    for k, tap in enumerate(taps.tolist()):
        acc = acc + work.index_select(dim, (base + k).clamp_(0, size - 1)) * tap
    return acc
