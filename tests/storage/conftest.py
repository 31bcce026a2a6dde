"""Storage test fixtures: one moto S3 server per session; a fresh bucket and AWS environment per test; the
same moto state over HTTPS (self-signed certificate) for presigned-URL input."""

from __future__ import annotations

import datetime
import ipaddress
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.storage.s3_endpoint import REGION, CountingApp, S3Server, s3_env, serve


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One moto server for the whole session, shut down at the end."""
    with serve() as server:
        yield server


@dataclass
class S3:
    """What a test gets: a fresh bucket, a client for checking results, and the byte counter."""

    client: Any
    bucket: str
    endpoint: str
    counter: CountingApp

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put(self, key: str, path: Any) -> str:
        with open(path, "rb") as f:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=f.read())
        return self.uri(key)

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def keys(self) -> list[str]:
        return [o["Key"] for o in self.client.list_objects_v2(Bucket=self.bucket).get("Contents", [])]

    def uploads(self) -> list[dict[str, Any]]:
        return self.client.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3]:
    """Point the AWS environment at the moto server (no real credentials or config files can leak in)."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3",
                 "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_env(s3_server.endpoint).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    client = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name=REGION)
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    s3_server.counter.reset()
    yield S3(client, bucket, s3_server.endpoint, s3_server.counter)
    s3_server.counter.reset()


def self_signed(directory: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, written as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[S3Server, str]]:
    """The same moto state served over HTTPS, and the certificate a client must trust."""
    cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    with serve(tls=(cert, key)) as server:
        yield server, cert


@dataclass
class Presigner:
    """Signs GET URLs for the test bucket against the HTTPS endpoint, as S3 signs them (SigV4)."""

    client: Any
    bucket: str
    counter: CountingApp

    def __call__(self, key: str) -> str:
        return self.client.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key},
                                                  ExpiresIn=600)


@pytest.fixture
def presign(s3: S3, tls_server: tuple[S3Server, str], monkeypatch: pytest.MonkeyPatch) -> Presigner:
    """The client trusts the test certificate the way a user's machine trusts a CA (SSL_CERT_FILE)."""
    server, cert = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    server.counter.reset()
    signer = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing",
                          config=botocore.config.Config(signature_version="s3v4"))
    return Presigner(signer, s3.bucket, server.counter)
