"""Hostile jobs are refused before any work and nothing is fetched; oversized ones before the model runs.

Real requests go only to loopback: a recording HTTPS server on 127.0.0.1 and ::1 shows that a job naming it
in any spelling is refused and that not even a TCP connection reached it, and (the control) that a policy
which allows it does reach it. The link-local and private-range rules are shown on addresses a test resolver
hands back; nothing ever connects to them. Each refusal is checked word for word: its one line is what the
FAILED event says (``tests/worker/test_failures.py`` gives it the code ``JOB_REFUSED``).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from streamup.config import Config
from streamup.errors import InputError, UsageError
from streamup.pipeline.probe import Probe, probe
from streamup.tiers import UHD_8K_PIXELS, Limits, limits
from streamup.worker import jobs
from streamup.worker.admission import Admission, address_kind, canonical_host, check_limits
from streamup.worker.failures import classify
from tests.conftest import MEDIA
from tests.storage.conftest import self_signed
from tests.storage.recorder import Recorder
from tests.worker.conftest import Aws, WorkerProcess, final

BUCKET = "media-bucket"
#: 640x360, 9.64 s, 761445 bytes, its index (moov) at the end (../shared/media/README.md).
CLIP = MEDIA / "orig_chaplin_640x360_h264_mp3.mp4"


def job(uri: str, tier: str = "pro", **fields: Any) -> jobs.Job:
    """A job as the worker gets it: through the parser."""
    message = {"jobId": "hostile-1", "inputUri": uri, "parameters": {"tier": tier}, **fields}
    return jobs.parse(json.dumps(message), BUCKET)


def no_limits(tier: str) -> Limits:
    return Limits(tier)


def never_probe(source: str) -> Probe:
    raise AssertionError(f"the policy fetched {source}")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def server(tls: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    """HTTPS on 127.0.0.1 and ::1 serving the clip; the client trusts its certificate (as a CA)."""
    monkeypatch.setenv("SSL_CERT_FILE", tls[0])
    recorder = Recorder({"clip.mp4": CLIP}, tls=tls, ipv6=True)
    yield recorder
    recorder.close()


def spellings(server: Recorder) -> dict[str, str]:
    """Every way a job may name the loopback server."""
    port = server.port
    return {
        "127.0.0.1": f"https://127.0.0.1:{port}/clip.mp4",
        "127.1": f"https://127.1:{port}/clip.mp4",
        "2130706433": f"https://2130706433:{port}/clip.mp4",
        "0x7f.1": f"https://0x7f.1:{port}/clip.mp4",
        "017700000001": f"https://017700000001:{port}/clip.mp4",
        "localhost": f"https://localhost:{port}/clip.mp4?X-Amz-Signature=secret",
        "LOCALHOST.": f"https://LOCALHOST.:{port}/clip.mp4",
        "[::1]": f"https://[::1]:{server.port6}/clip.mp4",
        "[::ffff:127.0.0.1]": f"https://[::ffff:127.0.0.1]:{port}/clip.mp4",
    }


def admit_all(admit: Admission, job: jobs.Job) -> None:
    """Both questions, in the worker's order: the job's words, then (not a duplicate) its source."""
    admit.check(job)
    admit.weigh(job)


def refusal(admit: Admission, uri: str) -> str:
    with pytest.raises(jobs.Refused) as refused:
        admit_all(admit, job(uri))
    message = str(refused.value)
    failure = classify(refused.value)
    assert (failure.code, failure.permanent, failure.message) == ("JOB_REFUSED", True, message)
    assert "\n" not in message and "secret" not in message
    return message


def test_loopback_in_every_spelling_is_refused_and_never_reached(server: Recorder) -> None:
    default = Admission.from_config(Config.from_environ({}), BUCKET)
    anyone = Admission.from_config(Config.from_environ({"STREAMUP_ALLOWED_INPUT_HOSTS": "*"}), BUCKET)
    table: list[tuple[str, str]] = []
    for spelling, uri in spellings(server).items():
        host = spelling.strip("[]")
        assert refusal(default, uri) == \
            f"input host {host.lower()} is not on STREAMUP_ALLOWED_INPUT_HOSTS (rule: allowed input hosts)"
        reason = refusal(anyone, uri)
        assert reason.startswith(f"input host {host.lower()} resolves to ")
        assert reason.endswith(", a loopback address (rule: no private addresses)"), reason
        table.append((uri.split("?")[0], reason))
    with pytest.raises(jobs.InvalidJob, match="inputUri must be an s3://bucket/key or https://host/path URI"):
        job(f"http://127.0.0.1:{server.port}/clip.mp4")  # the contract has no http:// at all
    assert (server.connections, server.requests) == (0, []), "a refused job reached the server"
    print("\n".join(f"{uri} -> {reason}" for uri, reason in table))  # the closing note's table (pytest -s)


def test_the_control_an_allowed_host_is_reached_and_its_header_weighed(server: Recorder) -> None:
    """The same server, allowed on purpose: the probe reads the header, and the tier's limit refuses it."""
    environ = {"STREAMUP_ALLOWED_INPUT_HOSTS": "127.0.0.1", "STREAMUP_ALLOWED_INPUT_NETWORKS": "127.0.0.0/8"}
    uri = f"https://127.0.0.1:{server.port}/clip.mp4"
    admit_all(Admission.from_config(Config.from_environ(environ), BUCKET), job(uri))
    assert server.requests and server.served < CLIP.stat().st_size, "a header, not the whole video"
    small = Admission(BUCKET, allowed_hosts=("127.0.0.1",),
                      allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),),
                      limits=lambda tier: Limits(tier, max_pixels=1920 * 1080))
    assert refusal(small, uri) == (
        "output would be 2560x1440 (3686400 pixels) from 640x360 at 4x, above tier pro's limit of 2073600 "
        "pixels (limit: STREAMUP_TIER_PRO_MAX_PIXELS)")


#: What a hostile name may resolve to: never connected to, only handed back by the resolver.
RESOLVES = {
    "metadata.example": ["169.254.169.254"],
    "metadata6.example": ["fd00:ec2::254"],
    "link.example": ["fe80::1"],
    "internal.example": ["10.1.2.3"],
    "office.example": ["192.168.1.20"],
    "vpc.example": ["172.31.0.2"],
    "ula.example": ["fd12:3456::1"],
    "cgnat.example": ["100.64.0.1"],
    "zero.example": ["0.0.0.0"],
    "mapped.example": ["::ffff:10.0.0.1"],
    "nat64.example": ["64:ff9b::a9fe:a9fe"],
    "multicast.example": ["239.1.2.3"],
    "mixed.example": ["93.184.216.34", "192.168.0.1"],
    "public.example": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
}
EXPECTED = {
    "metadata.example": "169.254.169.254, a link-local (instance metadata)",
    "metadata6.example": "fd00:ec2::254, a link-local (instance metadata)",
    "link.example": "fe80::1, a link-local",
    "internal.example": "10.1.2.3, a private",
    "office.example": "192.168.1.20, a private",
    "vpc.example": "172.31.0.2, a private",
    "ula.example": "fd12:3456::1, a private",
    "cgnat.example": "100.64.0.1, a private",
    "zero.example": "0.0.0.0, a this-network",
    "mapped.example": "::ffff:a00:1, a private",
    "nat64.example": "64:ff9b::a9fe:a9fe, a link-local (instance metadata)",
    "multicast.example": "239.1.2.3, a special-purpose",
    "mixed.example": "192.168.0.1, a private",
}


def resolver(host: str) -> list[str]:
    try:
        return RESOLVES[host]
    except KeyError:
        raise OSError(-2, "Name or service not known") from None


def test_private_and_link_local_addresses_are_refused_by_what_the_name_resolves_to() -> None:
    admit = Admission(BUCKET, resolver, allowed_hosts=("*.example",), limits=no_limits, probe=never_probe)
    for host, reason in EXPECTED.items():
        assert refusal(admit, f"https://{host}/v/clip.mp4") == \
            f"input host {host} resolves to {reason} address (rule: no private addresses)"
    admit_all(admit, job("https://public.example/v/clip.mp4"))  # public: admitted; no limits: not probed
    for literal in ("169.254.169.254", "[fd00:ec2::254]", "[::ffff:169.254.169.254]", "0251.0376.0251.0376"):
        assert "link-local (instance metadata) address" in refusal(
            Admission(BUCKET, resolver, allowed_hosts=("*",), probe=never_probe),
            f"https://{literal}/latest/meta-data/iam/security-credentials/role")


def test_allowed_networks_and_unresolvable_hosts() -> None:
    inside = Admission(BUCKET, resolver, allowed_hosts=("internal.example",),
                       allowed_networks=(ipaddress.ip_network("10.0.0.0/8"),), limits=no_limits,
                       probe=never_probe)
    admit_all(inside, job("https://internal.example/v/clip.mp4"))
    assert refusal(inside, "https://office.example/v/clip.mp4").endswith("(rule: allowed input hosts)")
    anyone = Admission(BUCKET, resolver, allowed_hosts=("*",), limits=no_limits, probe=never_probe)
    with pytest.raises(InputError, match=r"^cannot resolve input host nowhere\.example: Name or service not"):
        anyone.check(job("https://nowhere.example/v/clip.mp4"))


def test_outputs_outside_the_workers_bucket_are_refused_unless_allowed() -> None:
    allowed = Config.from_environ({"STREAMUP_ALLOWED_OUTPUT_BUCKETS": "results, archive"})
    admit = Admission.from_config(allowed, BUCKET)
    admit.check_output(f"s3://{BUCKET}/out/a.mp4")
    admit.check_output("s3://archive/out/a.mp4")
    with pytest.raises(jobs.Refused) as refused:
        admit.check_output("s3://someone-elses-bucket/a.mp4")
    assert str(refused.value) == (
        "output bucket someone-elses-bucket is not the worker's bucket media-bucket "
        "(rule: outputs in S3_BUCKET_NAME or STREAMUP_ALLOWED_OUTPUT_BUCKETS)")
    assert classify(refused.value).code == "JOB_REFUSED"


def test_configuration_is_read_once_and_checked() -> None:
    admit = Admission.from_config(Config.from_environ({
        "STREAMUP_ALLOWED_INPUT_HOSTS": "Media.Example.COM., 0x7f.1 *.cdn.example",
        "STREAMUP_ALLOWED_INPUT_NETWORKS": "10.20.0.0/16 fd00::/8"}), BUCKET)
    assert admit.allowed_hosts == ("media.example.com", "127.0.0.1", "*.cdn.example")
    assert [str(n) for n in admit.allowed_networks] == ["10.20.0.0/16", "fd00::/8"]
    with pytest.raises(UsageError, match="STREAMUP_ALLOWED_INPUT_NETWORKS: 'ten' is not a network"):
        Admission.from_config(Config.from_environ({"STREAMUP_ALLOWED_INPUT_NETWORKS": "ten"}), BUCKET)
    assert canonical_host("017700000001") == canonical_host("[::ffff:127.0.0.1]").ipv4_mapped  # type: ignore[union-attr]
    zoned = canonical_host("[fe80::1%eth0]")
    assert not isinstance(zoned, str) and address_kind(zoned) == "link-local"
    with pytest.raises(UsageError, match="STREAMUP_TIER_PRO_MAX_PIXELS must be a number: '8k'"):
        # at the worker's start, not at its first pro job
        Admission.from_config(Config.from_environ({"STREAMUP_TIER_PRO_MAX_PIXELS": "8k"}), BUCKET)


# -- tier limits, on real clips ------------------------------------------------------------------------------


def test_the_default_pixel_limit_admits_1080p_at_4x_exactly() -> None:
    header = probe(str(MEDIA / "bench_1920x1080_h264_aac.mp4"))
    assert (header.width, header.height) == (1920, 1080)
    assert limits("pro").max_pixels == UHD_8K_PIXELS == 7680 * 4320
    check_limits(limits("pro"), 4, header)  # 7680x4320: on the limit, not above it


def test_a_4096x2160_source_at_4x_is_refused_by_the_default() -> None:
    """The issue's 16384x8640 output, on the header fields a 4096x2160 source has (no such clip is shared)."""
    with pytest.raises(jobs.Refused, match=r"^output would be 16384x8640 \(141557760 pixels\) from 4096x2160 "
                                           r"at 4x, above tier pro's limit of 33177600 pixels"):
        check_limits(limits("pro"), 4, Probe(4096, 2160, 60.0, 10**9))


def test_operator_limits_on_seconds_bytes_and_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    header = probe(str(MEDIA / "noaudio_h264.mp4"))  # 640x272, 10.0 s, 509907 bytes
    assert (header.width, header.height, header.duration) == (640, 272, 10.0)
    monkeypatch.setenv("STREAMUP_TIER_BASIC_MAX_SECONDS", "5")
    with pytest.raises(jobs.Refused, match=r"^source is 10 s long, above tier basic's limit of 5 s \(limit: "
                                           r"STREAMUP_TIER_BASIC_MAX_SECONDS\)$"):
        check_limits(limits("basic"), 2, header)
    monkeypatch.setenv("STREAMUP_TIER_BASIC_MAX_SECONDS", "")  # an empty value lifts it
    monkeypatch.setenv("STREAMUP_TIER_BASIC_MAX_BYTES", "100000")
    with pytest.raises(jobs.Refused, match=rf"^input is {header.size} bytes, above tier basic's limit of "
                                           r"100000 bytes \(limit: STREAMUP_TIER_BASIC_MAX_BYTES\)$"):
        check_limits(limits("basic"), 2, header)
    monkeypatch.delenv("STREAMUP_TIER_BASIC_MAX_BYTES")
    monkeypatch.setenv("STREAMUP_TIER_BASIC_MAX_PIXELS", str(1280 * 544 - 1))
    with pytest.raises(jobs.Refused, match=r"^output would be 1280x544 "):
        check_limits(limits("basic"), 2, header)
    still = probe(str(MEDIA / "still_640x360.png"))
    monkeypatch.setenv("STREAMUP_TIER_BASIC_MAX_SECONDS", "3600")
    with pytest.raises(jobs.Refused, match=r"^source is of unknown length"):
        check_limits(limits("basic"), 2, still)


def test_the_cli_has_no_limits_unless_an_operator_set_one(monkeypatch: pytest.MonkeyPatch) -> None:
    assert limits("pro", defaults=False) == Limits("pro")
    monkeypatch.setenv("STREAMUP_TIER_PRO_MAX_PIXELS", "1000")
    assert limits("pro", defaults=False) == Limits("pro", max_pixels=1000)
    monkeypatch.setenv("STREAMUP_TIER_PRO_MAX_BYTES", "-1")
    with pytest.raises(UsageError, match="STREAMUP_TIER_PRO_MAX_BYTES must not be negative"):
        limits("pro")



# -- through a real `streamup worker` process ----------------------------------------------------------------


def test_a_real_worker_refuses_hostile_jobs_once_and_fetches_nothing(
    aws: Aws, start_worker: Callable[..., WorkerProcess], server: Recorder
) -> None:
    """``streamup worker`` as shipped (the CLI composes the admission policy from the environment): jobs
    naming the loopback server in four spellings and an output beyond the tier's pixel limit each get one
    FAILED ``JOB_REFUSED`` with ``permanent: true``; nothing reached the server; the messages are gone."""
    url, dlq = aws.queue(2, max_receives=2)
    assert dlq is not None
    key = aws.put("in/clip.mp4", CLIP)
    env = aws.env(url, STREAMUP_ALLOWED_INPUT_HOSTS="", STREAMUP_ALLOWED_INPUT_NETWORKS="",
                  STREAMUP_TIER_BASIC_MAX_PIXELS=str(640 * 360 * 4 - 1))  # CLIP at 2x is one pixel over
    worker = start_worker(env).ready()
    hostile = {name: spellings(server)[name] for name in ("127.1", "2130706433", "localhost", "[::1]")}
    for n, uri in enumerate(hostile.values()):
        aws.send(url, {"jobId": f"hostile-{n}", "inputUri": uri, "outputKey": f"out/hostile-{n}.mp4",
                       "parameters": {"tier": "basic"}})
    aws.send(url, {"jobId": "too-big", "inputKey": key, "outputKey": "out/too-big.mp4",
                   "parameters": {"tier": "basic"}})
    reasons = {}
    for job_id in [*(f"hostile-{n}" for n in range(len(hostile))), "too-big"]:
        events = aws.wait(job_id, final)
        assert [e["status"] for e in events] == ["FAILED"], events  # no RUNNING: refused before any work
        error = events[0]["error"]
        assert (error["code"], error["permanent"]) == ("JOB_REFUSED", True)
        reasons[job_id] = error["message"]
    assert all("not on STREAMUP_ALLOWED_INPUT_HOSTS" in reasons[f"hostile-{n}"] for n in range(len(hostile)))
    assert "above tier basic's limit of 921599 pixels" in reasons["too-big"]
    assert server.connections == 0 and server.requests == []
    assert not aws.exists("out/too-big.mp4")
    assert aws.counts(url) == (0, 0) and aws.counts(dlq) == (0, 0)
    assert worker.stop() == 0
