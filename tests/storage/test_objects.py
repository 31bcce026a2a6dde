"""The storage table's object operations (``exists``, ``read``, ``create_exclusive``, ``make_folder``,
``remove_prefix``: what the fan-out's work area is made of), the same tests on the filesystem and on the real
moto S3 endpoint, judged by what is then on disk or in the bucket."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from streamup import storage
from streamup.errors import OutputError
from tests.storage.conftest import S3


@dataclass
class Place:
    """Where a test writes (``base``: a local folder or ``s3://bucket``) and what is there afterwards."""

    base: str
    listing: Callable[[], list[str]]

    def uri(self, name: str) -> str:
        return f"{self.base}/{name}"


@pytest.fixture(params=["local", "s3"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    if request.param == "local":
        return Place(str(tmp_path), lambda: sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")
                                                  if p.is_file()))
    s3: S3 = request.getfixturevalue("s3")
    return Place(f"s3://{s3.bucket}", lambda: sorted(s3.keys()))


def test_an_object_is_created_once_and_read_back(place: Place) -> None:
    uri = place.uri("work/plan.json")
    storage.make_folder(place.uri("work"))
    assert not storage.exists(uri) and storage.read(uri) is None
    assert storage.create_exclusive(uri, b'{"first":1}') is True
    assert storage.exists(uri) and storage.read(uri) == b'{"first":1}'
    assert storage.create_exclusive(uri, b'{"second":2}') is False, "the second writer learns it lost"
    assert storage.read(uri) == b'{"first":1}', "and the first object is left as it was"
    assert place.listing() == ["work/plan.json"], "no partial file, no second object"


def test_racing_creators_publish_exactly_once_on_the_filesystem(tmp_path: Path) -> None:
    """Eight threads create one name at the same moment: one True, its bytes on disk, nothing else left."""
    uri = str(tmp_path / "stitch.json")
    start = threading.Barrier(8)
    won: dict[int, bool] = {}

    def create(i: int) -> None:
        start.wait()
        won[i] = storage.create_exclusive(uri, f"owner {i}".encode())

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, w in won.items() if w]
    assert len(won) == 8 and len(winners) == 1
    assert storage.read(uri) == f"owner {winners[0]}".encode()
    assert [p.name for p in tmp_path.iterdir()] == ["stitch.json"]


def test_removing_a_prefix_removes_everything_under_it_and_nothing_beside_it(place: Place) -> None:
    storage.make_folder(place.uri("work/key/sub"))
    storage.make_folder(place.uri("work/key-2"))
    for name in ("work/key/plan.json", "work/key/sub/seg-00000.json", "work/key-2/plan.json"):
        assert storage.create_exclusive(place.uri(name), b"{}")
    storage.remove_prefix(place.uri("work/key"))
    assert place.listing() == ["work/key-2/plan.json"], "a key that merely starts with the prefix stays"
    assert not storage.exists(place.uri("work/key/plan.json"))
    storage.remove_prefix(place.uri("work/key"))  # gone already: no error


def test_a_whole_bucket_is_never_a_prefix(s3: S3) -> None:
    s3.client.put_object(Bucket=s3.bucket, Key="out.mp4", Body=b"video")
    for uri in (f"s3://{s3.bucket}", f"s3://{s3.bucket}/"):
        with pytest.raises(OutputError, match="want s3://bucket/key"):
            storage.remove_prefix(uri)
    assert s3.keys() == ["out.mp4"]


def test_failures_are_one_line_output_errors(s3: S3, tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="no such bucket"):
        storage.create_exclusive("s3://no-such-bucket-here/work/plan.json", b"{}")
    with pytest.raises(OutputError, match="no such bucket"):
        storage.read("s3://no-such-bucket-here/work/plan.json")
    with pytest.raises(OutputError, match=r"cannot write .*: No such file or directory"):
        storage.create_exclusive(str(tmp_path / "missing" / "plan.json"), b"{}")
    with pytest.raises(OutputError, match=r"cannot read .*: Is a directory"):
        storage.read(str(tmp_path))
    with pytest.raises(OutputError, match="no exists for https:// URLs"):
        storage.exists("https://example.com/plan.json")
    assert list(tmp_path.iterdir()) == [], "a failed local create leaves no partial file"


def test_make_folder_makes_local_parents_and_nothing_on_s3(s3: S3, tmp_path: Path) -> None:
    storage.make_folder(str(tmp_path / "a" / "b"))
    storage.make_folder(str(tmp_path / "a" / "b"))  # there already: no error
    assert (tmp_path / "a" / "b").is_dir()
    storage.make_folder(s3.uri("work/key"))
    assert s3.keys() == []
