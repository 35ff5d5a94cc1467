"""The persistent change index survives restarts and knows when it must be rebuilt."""

from __future__ import annotations

from pathlib import Path

from seqferry_executor.backends.local.index import ChangeIndex, IndexedFile
from seqferry_executor.backends.local.uploader import Endpoint

DEST = "http://127.0.0.1:1|us-east-1|bucket"


def test_index_survives_reopen(tmp_path: Path) -> None:
    # GIVEN a new index (which must be rebuilt: nothing known yet)
    path = tmp_path / "state" / "index.sqlite"
    index = ChangeIndex.open(path, DEST)
    assert index.rebuild_needed
    # WHEN files are recorded, one forgotten, and the index closed
    index.record("a/b.txt", IndexedFile(3, 10, 7, "crc", '"etag"'))
    index.record("a/c.txt", IndexedFile(4, 11, 8))
    index.flush()
    index.forget("a/c.txt")
    index.close()
    # THEN a reopened index has the survivors and needs no rebuild
    again = ChangeIndex.open(path, DEST)
    assert not again.rebuild_needed
    assert dict(again.entries) == {"a/b.txt": IndexedFile(3, 10, 7, "crc", '"etag"')}
    again.close()


def test_index_for_another_bucket_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    index = ChangeIndex.open(path, DEST)
    index.record("k", IndexedFile(1, 1))
    index.close()
    other = ChangeIndex.open(path, DEST.replace("bucket", "other"))
    assert other.rebuild_needed
    assert len(other) == 0
    other.close()


def test_rebuild_keeps_what_a_pass_recorded_meanwhile(tmp_path: Path) -> None:
    index = ChangeIndex.open(tmp_path / "i.sqlite", DEST)
    index.record("fresh", IndexedFile(5, 99, 1))
    count = index.replace_all([("listed", IndexedFile(2, None)), ("fresh", IndexedFile(5, None))])
    assert count == 2
    assert index.entries["fresh"] == IndexedFile(5, 99, 1)
    assert index.entries["listed"].mtime_ns is None
    assert not index.rebuild_needed
    index.close()


def test_inflight_multipart_keys_are_durable(tmp_path: Path) -> None:
    path = tmp_path / "i.sqlite"
    index = ChangeIndex.open(path, DEST)
    index.mark_inflight("big/one")
    index.mark_inflight("big/two")
    index.clear_inflight("big/one")
    index.close()
    again = ChangeIndex.open(path, DEST)
    assert again.inflight() == ["big/two"]
    again.close()


def test_upload_intents_survive_a_crash_until_their_key_is_recorded(tmp_path: Path) -> None:
    # GIVEN keys noted before their upload, one of them uploaded and recorded
    path = tmp_path / "i.sqlite"
    index = ChangeIndex.open(path, DEST)
    index.note_intents(["run/a", "run/b", "run/c"])
    index.record("run/a", IndexedFile(1, 1))
    index.flush()
    # WHEN the process dies without closing the index (the connection is simply dropped)
    index._conn.close()
    # THEN the keys never recorded are still noted; clearing them empties the list
    again = ChangeIndex.open(path, DEST)
    assert again.intents() == ["run/b", "run/c"]
    again.clear_intents(["run/b", "run/c"])
    assert again.intents() == []
    again.close()


def test_endpoint_paths() -> None:
    local = Endpoint.of("http://127.0.0.1:4566", "us-east-1", "runs")
    assert (local.host, local.tls) == ("127.0.0.1:4566", False)
    assert local.path("seq/a b+c.txt") == "/runs/seq/a%20b%2Bc.txt"
    aws = Endpoint.of(None, "eu-west-1", "runs")
    assert (aws.host, aws.tls) == ("runs.s3.eu-west-1.amazonaws.com", True)
    assert aws.path("seq/x") == "/seq/x"
