"""Which jobs this worker runs at all: hostile or oversized ones are refused before any work.

Whoever can put a message on the queue can name any URL and any bucket; without this policy a job naming
``https://169.254.169.254/...`` or an internal service makes the worker request it, a job naming another
customer's bucket makes it write there, and a 4096x2160 source at 4x holds a CPU worker for days. The worker
calls the policy (``Admission.__call__``, the ``admit(job)`` seam) after parsing a job and before any fetch or
model build; a refusal is one ``Refused`` (an ``InvalidJob``: one FAILED event with ``permanent: true``, code
``JOB_REFUSED``, the message deleted, nothing retried) whose one line names the rule or limit and the value.

The rules, in the order they are checked:
1. An input is ``s3://`` (read through the configured S3 endpoint) or ``https://`` (the job parser refuses
   every other scheme; this policy checks again, since it may be handed a ``Job`` from elsewhere).
2. An https host must be on ``STREAMUP_ALLOWED_INPUT_HOSTS`` (exact names, ``*.example.com``, or ``*`` for
   any public host); by default none is, so inputs come from S3 only. Every spelling of a host is first made
   canonical: ``127.1``, ``2130706433``, ``0x7f.1`` and ``017700000001`` are all 127.0.0.1 (the legacy
   ``inet_aton`` forms a resolver would accept), ``[::1]`` is ::1, a trailing dot and upper case are dropped.
3. Every address the host resolves to (the ``resolve`` collaborator: the system resolver in the worker, a
   table in the tests) must be public: loopback, link-local (169.254.0.0/16, fe80::/10, the EC2 metadata
   address fd00:ec2::254), private (10/8, 172.16/12, 192.168/16, fc00::/7, 100.64/10, 0/8) and every other
   special range ``ipaddress`` knows (multicast, reserved, documentation, benchmarking...) are refused, and
   so is an IPv6 address that carries one of those IPv4 addresses (``::ffff:127.0.0.1``, 6to4, Teredo,
   NAT64), unless the address is in ``STREAMUP_ALLOWED_INPUT_NETWORKS``. One forbidden address among many
   refuses the host: the connection may go to any of them.
4. An output is in ``S3_BUCKET_NAME`` or a bucket on ``STREAMUP_ALLOWED_OUTPUT_BUCKETS``.
5. The tier's limits (``streamup.tiers``: output pixels, default 8K UHD; source seconds; input bytes),
   checked on the source's container header (``streamup.pipeline.probe``): the first byte fetched, and only
   once rules 1-3 passed.

What is not closed here: the https transport resolves the host again when it connects, so a DNS server that
answers a public address to this check and a private one a moment later (DNS rebinding) is not stopped by
it; ``streamup.storage.http`` at least never follows a redirect, and on EC2 the instance metadata service
needs a session token (IMDSv2, ``HttpTokens: required`` in deploy/aws/streamup-fleet.yaml) that a plain GET
cannot obtain. Allow only hosts whose DNS you trust.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from streamup import config, tiers
from streamup.config import Config
from streamup.errors import InputError, UsageError
from streamup.pipeline.probe import Probe
from streamup.pipeline.probe import probe as read_header
from streamup.tiers import Limits
from streamup.worker.jobs import Job, Refused

#: host -> the addresses (text) a connection to it may reach; raises ``OSError`` when it cannot resolve.
Resolver = Callable[[str], Sequence[str]]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ADDRESS_RULE = "rule: no private addresses"
#: Ranges named in refusals, most specific first (fd00:ec2::254 lies inside fc00::/7). Anything else that is
#: not globally routable is refused as "special-purpose".
_KINDS: tuple[tuple[str, tuple[Network, ...]], ...] = tuple(
    (kind, tuple(ipaddress.ip_network(n) for n in nets)) for kind, nets in (
        ("loopback", ("127.0.0.0/8", "::1/128")),
        ("link-local (instance metadata)", ("169.254.169.254/32", "fd00:ec2::254/128")),
        ("link-local", ("169.254.0.0/16", "fe80::/10")),
        ("private", ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "100.64.0.0/10")),
        ("this-network", ("0.0.0.0/8", "::/128")),
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPATIBLE = ipaddress.ip_network("::/96")
#: One part of a legacy numeric IPv4 spelling: decimal, 0-prefixed octal or 0x-prefixed hex.
_NUMBER_PART = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")


def system_resolver(host: str) -> list[str]:
    """The addresses the system resolver gives ``host``: what the https transport will connect to."""
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)})


def canonical_host(host: str) -> Address | str:
    """``host`` as an address when it spells one (in any form a resolver accepts), else the lower-case name
    without a trailing dot."""
    name = host.strip("[]").rstrip(".").lower()  # [::1], example.com.
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        pass
    return _legacy_ipv4(name) or name


def _legacy_ipv4(name: str) -> ipaddress.IPv4Address | None:
    """``inet_aton``'s forms: 1 to 4 parts, each decimal, octal or hex, the last filling the bytes left."""
    parts = name.split(".")
    if not 1 <= len(parts) <= 4 or not all(_NUMBER_PART.fullmatch(p) for p in parts):
        return None
    values = [int(p, 16) if p[:2].lower() == "0x" else int(p, 8) if p.startswith("0") else int(p)
              for p in parts]
    last_bits = 8 * (5 - len(values))
    if any(v > 255 for v in values[:-1]) or values[-1] >= 1 << last_bits:
        return None
    number = values[-1]
    for i, v in enumerate(values[:-1]):
        number |= v << (24 - 8 * i)
    return ipaddress.IPv4Address(number)


def _embedded(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo client, NAT64, IPv4-compatible)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped or address.sixtofour:
        return address.ipv4_mapped or address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if address in _NAT64 or (address in _COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_kind(address: Address) -> str | None:
    """What makes ``address`` unfit for a job to reach ("loopback", "private"...), None for a public one."""
    for candidate in (_embedded(address), address):
        if candidate is None:
            continue
        for kind, networks in _KINDS:
            if any(candidate in n for n in networks):
                return kind
        if not candidate.is_global or candidate.is_multicast or candidate.is_reserved or \
                candidate.is_unspecified:
            return "special-purpose"
    return None


def check_limits(limits: Limits, scale: int, source: Probe) -> None:
    """Refuse a source beyond ``limits`` (a tier's, see ``tiers.limits``) at enlargement ``scale``."""
    tier = limits.tier
    if limits.max_bytes is not None and source.size is not None and source.size > limits.max_bytes:
        raise Refused(f"input is {source.size} bytes, above tier {tier}'s limit of {limits.max_bytes} bytes "
                      f"(limit: {limits.variable('max_bytes')})")
    if limits.max_seconds is not None and (source.duration is None or source.duration > limits.max_seconds):
        lasts = "of unknown length" if source.duration is None else f"{source.duration:g} s long"
        raise Refused(f"source is {lasts}, above tier {tier}'s limit of {limits.max_seconds:g} s "
                      f"(limit: {limits.variable('max_seconds')})")
    width, height = source.width * scale, source.height * scale
    if limits.max_pixels is not None and width * height > limits.max_pixels:
        raise Refused(f"output would be {width}x{height} ({width * height} pixels) from "
                      f"{source.width}x{source.height} at {scale}x, above tier {tier}'s limit of "
                      f"{limits.max_pixels} pixels (limit: {limits.variable('max_pixels')})")


@dataclass(frozen=True)
class Admission:
    """The policy; ``__call__(job)`` is the worker's ``admit`` seam. Collaborators are passed in:
    ``resolve`` (host -> addresses), ``limits`` (tier -> ``Limits``), ``probe`` (source -> ``Probe``)."""

    bucket: str
    resolve: Resolver = system_resolver
    allowed_hosts: tuple[str, ...] = ()
    allowed_networks: tuple[Network, ...] = ()
    allowed_output_buckets: tuple[str, ...] = ()
    limits: Callable[[str], Limits] = tiers.limits
    probe: Callable[[str], Probe] = read_header

    @classmethod
    def from_config(cls, cfg: Config, bucket: str, *, resolve: Resolver = system_resolver) -> Admission:
        """The policy a worker's configuration sets (``Config.allowed_input_hosts``,
        ``allowed_input_networks``, ``allowed_output_buckets``; limits from ``STREAMUP_TIER_*_MAX_*``)."""
        networks = []
        for text in cfg.allowed_input_networks:
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                raise UsageError(f"{config.ALLOWED_INPUT_NETWORKS}: {text!r} is not a network (CIDR)") \
                    from None
        hosts = tuple(h if h.startswith("*") else str(canonical_host(h))
                      for h in (h.lower() for h in cfg.allowed_input_hosts))
        table = {tier: tiers.limits(tier, cfg) for tier in tiers.TIERS}  # a bad TIER_*_MAX_* fails now
        return cls(bucket, resolve, hosts, tuple(networks), cfg.allowed_output_buckets, table.__getitem__)

    def check(self, job: Job) -> None:
        """Raise ``Refused`` unless this worker may run ``job`` by its words: nothing is fetched (an
        https host is resolved, which ``InputError`` reports when it fails)."""
        self.check_input(job.source)
        self.check_output(job.destination)

    def weigh(self, job: Job) -> None:
        """Raise ``Refused`` when ``job``'s source is beyond its tier's limits (its header is read: an
        unreadable one is an ``InputError``, classified like any input failure)."""
        limits = self.limits(job.tier)
        if any(getattr(limits, f) is not None for f in tiers.LIMIT_FIELDS):
            check_limits(limits, job.scale, self.probe(job.source))

    def check_input(self, uri: str) -> None:
        """Rules 1-3: the scheme, the host's allow-list and every address it resolves to."""
        scheme = uri.partition("://")[0]
        if scheme == "s3":
            return
        if scheme != "https":
            raise Refused(f"input scheme {scheme}:// is not allowed (rule: inputs are s3:// or https://)")
        host = urllib.parse.urlsplit(uri).hostname or ""
        canonical = canonical_host(host)
        if not self._host_allowed(str(canonical)):
            raise Refused(f"input host {host} is not on {config.ALLOWED_INPUT_HOSTS} "
                          "(rule: allowed input hosts)")
        if isinstance(canonical, str):
            try:
                addresses = [canonical_host(a) for a in self.resolve(canonical)]
            except OSError as e:
                raise _unresolved(host, e) from None
        else:
            addresses = [canonical]
        if not addresses:
            raise Refused(f"input host {host} resolves to no address ({ADDRESS_RULE})")
        for address in addresses:
            if isinstance(address, str):
                raise Refused(f"input host {host} resolves to {address!r}, not an address ({ADDRESS_RULE})")
            kind = address_kind(address)
            if kind and not any(address in n for n in self.allowed_networks):
                raise Refused(f"input host {host} resolves to {address}, a {kind} address ({ADDRESS_RULE})")

    def check_output(self, uri: str) -> None:
        """Rule 4: the worker's bucket or an allowed one."""
        if not uri.startswith("s3://"):
            raise Refused(f"output {uri.split('?', 1)[0]} is not in S3 (rule: outputs are s3://)")
        bucket = uri[len("s3://"):].partition("/")[0]
        if bucket != self.bucket and bucket not in self.allowed_output_buckets:
            raise Refused(f"output bucket {bucket} is not the worker's bucket {self.bucket or '(none)'} "
                          f"(rule: outputs in {config.S3_BUCKET_NAME} or {config.ALLOWED_OUTPUT_BUCKETS})")

    def _host_allowed(self, host: str) -> bool:
        return any(pattern == "*" or pattern == host or
                   (pattern.startswith("*.") and host.endswith(pattern[1:]))
                   for pattern in self.allowed_hosts)


def _unresolved(host: str, error: OSError) -> InputError:
    """A host that does not resolve: the world's fault (worth a retry) only when the resolver said "try
    again"; the chained ``ConnectionError`` is what ``storage.transient`` reads."""
    refused = InputError(f"cannot resolve input host {host}: {error.strerror or error}")
    if error.errno in (socket.EAI_AGAIN, errno.EAGAIN):
        refused.__cause__ = ConnectionError(str(error))
    return refused
