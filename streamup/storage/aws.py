"""What every AWS transport shares: one way to build a client, one wording of its errors, one reading of
whether an error is worth a retry.

boto3 and botocore are imported here and in the transports that use them (``storage.s3``, the worker's SQS
queue), nowhere else: the rest of streamup speaks of ``InputError``/``OutputError`` and asks ``transient``
whether a failure was the world's (5xx, throttling, a dropped connection) or the request's (a 4xx refusal).

Configuration is boto3's own: the credential chain (environment, profile, SSO, instance/task role),
``AWS_REGION`` (or ``AWS_DEFAULT_REGION``), ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` for a
local or compatible endpoint, and botocore's *standard* retry mode (exponential backoff with jitter, 5
attempts) unless ``AWS_RETRY_MODE`` / ``AWS_MAX_ATTEMPTS`` say otherwise. The 60 s read timeout outlasts
SQS's longest long poll (20 s).
"""

from __future__ import annotations

import functools
import os
import urllib.error
import urllib.parse
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import urllib3.exceptions

#: Every error a boto call raises: the transports catch exactly these.
ERRORS: tuple[type[Exception], ...] = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)

#: Error codes that mean "slow down / try later", whatever the HTTP status says.
_THROTTLING = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout",
                         "RequestTimeTooSkewed", "ServiceUnavailable", "InternalError"})
_NETWORK = (botocore.exceptions.BotoCoreError, urllib3.exceptions.HTTPError, urllib.error.URLError,
            ConnectionError, TimeoutError)
_UNREACHABLE = (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError)


def make_client(service: str = "s3") -> Any:
    """A ``service`` client from the environment; explicit ``Config`` only where the user set nothing."""
    retries: dict[str, Any] = {}
    if "AWS_RETRY_MODE" not in os.environ:
        retries["mode"] = "standard"
    if "AWS_MAX_ATTEMPTS" not in os.environ:
        retries["max_attempts"] = 5
    config = botocore.config.Config(retries=retries or None, connect_timeout=5, read_timeout=60,
                                    user_agent_appid="streamup")
    session = boto3.session.Session(region_name=os.environ.get("AWS_REGION") or None)
    return session.client(service, config=config)


def shared_client(service: str = "s3") -> Any:
    """One ``service`` client per process and environment, built on first use and then shared (a client is
    thread-safe): building one took 0.5-1.6 s here (botocore loads its service model; 2 busy cores), and a
    fanned-out job makes dozens of small requests. A changed environment (another endpoint, other
    credentials) gets a new client."""
    return _client_for(service, tuple(sorted(os.environ.items())))


@functools.lru_cache(maxsize=8)
def _client_for(service: str, environment: tuple[tuple[str, str], ...]) -> Any:
    return make_client(service)


def error_code(error: BaseException) -> str:
    """The service's error code of a refused request (``NoSuchKey``, ``412``...), "" for any other error."""
    if isinstance(error, botocore.exceptions.ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


def describe(error: Exception) -> str:
    """The part of a boto error a user can act on, in a few words."""
    if isinstance(error, botocore.exceptions.ClientError):
        err = error.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in {"404", "NoSuchKey", "NotFound"}:
            return "no such object"
        if code == "NoSuchBucket":
            return "no such bucket"
        if code in {"403", "AccessDenied", "Forbidden", "AllAccessDisabled"}:
            return "access denied"
        if code in {"412", "PreconditionFailed"}:
            return "the object was replaced while it was being read"
        return f"{code or status}: {err.get('Message') or 'request failed'}"
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return "no AWS credentials (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or a role)"
    if isinstance(error, _UNREACHABLE):
        url = urllib.parse.urlsplit(str(error.kwargs.get("endpoint_url", "")))
        return f"cannot reach the endpoint {url.scheme}://{url.netloc}" if url.netloc else str(error)
    return str(error) or type(error).__name__


def transient(error: BaseException) -> bool | None:
    """Walk ``error``'s chain (streamup's errors keep the boto error they replaced as ``__context__``):
    True when a 5xx, throttling or network error is in it, False when a 4xx refusal is, None when no remote
    error is (the failure is about the bytes, e.g. not a video)."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, botocore.exceptions.ClientError):
            status = int(cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            return status >= 500 or status == 429 or error_code(cause) in _THROTTLING
        if isinstance(cause, _NETWORK):
            return True
        cause = cause.__cause__ or cause.__context__
    return None
