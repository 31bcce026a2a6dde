"""``UpscaleOptions`` is the one place a run's values are checked against the shared vocabulary."""

from __future__ import annotations

import pytest

from streamup.errors import UsageError
from streamup.options import BACKENDS, DEINTERLACE, DEVICES, PRECISIONS, REUSE, SCALES, UpscaleOptions


def test_every_value_of_the_vocabulary_builds() -> None:
    for scale in SCALES:
        for device in DEVICES:
            for precision in PRECISIONS:
                for backend in BACKENDS:
                    opts = UpscaleOptions(scale=scale, device=device, precision=precision, backend=backend)
                    assert (opts.scale, opts.device, opts.precision, opts.backend) == (
                        scale, device, precision, backend)
    assert UpscaleOptions(tile=0, tile_pad=0, batch=1, lanes=1).tile == 0  # 0 = whole frames
    assert [UpscaleOptions(deinterlace=d).deinterlace for d in DEINTERLACE] == list(DEINTERLACE)
    assert [UpscaleOptions(reuse=r).reuse for r in REUSE] == list(REUSE)


@pytest.mark.parametrize(("values", "message"), [
    ({"scale": 3}, "scale must be one of 2, 4, got 3"),
    ({"scale": True}, "scale must be one of 2, 4, got True"),
    ({"scale": "2"}, "scale must be one of 2, 4, got '2'"),
    ({"device": "tpu"}, "device must be one of auto, cpu, gpu, got 'tpu'"),
    ({"precision": "int8"}, "precision must be one of auto, fp32, bf16, fp16, got 'int8'"),
    ({"backend": "tensorrt"}, "backend must be one of auto, torch, lanczos, got 'tensorrt'"),
    ({"deinterlace": "bob"}, "deinterlace must be one of auto, field, off, got 'bob'"),
    ({"reuse": "always"}, "reuse must be one of auto, off, got 'always'"),
    ({"device": "cpu", "require_gpu": True}, "require_gpu .* contradicts device cpu"),
    ({"lanes": 0}, "lanes must be a whole number of at least 1, got 0"),
    ({"batch": 0}, "batch must be a whole number of at least 1, got 0"),
    ({"tile": -1}, "tile must be a whole number of at least 0, got -1"),
    ({"tile_pad": 2.5}, "tile_pad must be a whole number of at least 0, got 2.5"),
])
def test_a_value_outside_the_vocabulary_is_one_usage_error(values: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message) as refused:
        UpscaleOptions(**values)
    assert "\n" not in str(refused.value)
