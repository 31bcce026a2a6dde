"""Which failures end a job for good and which let its message come back (``streamup.worker.failures``)."""

from __future__ import annotations

import urllib.error

import botocore.exceptions
import pytest

from streamup.errors import InputError, ModelError, OutputError, OutputExists, UsageError
from streamup.worker.failures import classify
from streamup.worker.jobs import InvalidJob


def raised_from(error: Exception, cause: BaseException) -> Exception:
    """``error`` raised while handling ``cause`` with ``from None``, as streamup's storage raises them."""
    try:
        try:
            raise cause
        except BaseException:
            raise error from None
    except Exception as e:
        return e


def client_error(code: str, status: int) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject"
    )


@pytest.mark.parametrize(
    ("error", "code", "permanent"),
    [
        (InvalidJob("jobId is missing"), "INVALID_JOB", True),
        (UsageError("scale must be one of 2, 4"), "INVALID_PARAMETERS", True),
        (ModelError("model not found"), "MODEL_UNAVAILABLE", True),
        (  # a weights download that could not reach the release server: the next try may
            raised_from(ModelError("cannot download https://x/w.pth"), urllib.error.URLError("no route")),
            "MODEL_UNAVAILABLE",
            False,
        ),
        (OutputExists("output already exists"), "OUTPUT_EXISTS", True),
        (InputError("input not found: s3://b/k"), "INPUT_UNUSABLE", True),  # no remote error behind it
        (
            raised_from(InputError("cannot read input: 503"), client_error("SlowDown", 503)),
            "INPUT_UNREADABLE",
            False,
        ),
        (raised_from(InputError("access denied"), client_error("AccessDenied", 403)), "INPUT_UNUSABLE", True),
        (
            raised_from(
                InputError("cannot read"), botocore.exceptions.EndpointConnectionError(endpoint_url="x")
            ),
            "INPUT_UNREADABLE",
            False,
        ),
        (
            raised_from(OutputError("upload failed"), client_error("InternalError", 500)),
            "OUTPUT_FAILED",
            False,
        ),
        (
            raised_from(OutputError("no such bucket"), client_error("NoSuchBucket", 404)),
            "OUTPUT_FAILED",
            True,
        ),
        (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), "OUT_OF_MEMORY", False),
        (KeyError("a bug"), "INTERNAL", False),  # unknown: retried, then parked in the DLQ, never lost
    ],
)
def test_classify(error: Exception, code: str, permanent: bool) -> None:
    failure = classify(error)
    assert (failure.code, failure.permanent) == (code, permanent)
    assert failure.message and "\n" not in failure.message
