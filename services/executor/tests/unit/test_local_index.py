"""The persistent change index survives restarts, knows when it must be rebuilt, and keeps only per-folder digests
in memory: a digest is stored only while the folder's rows are what its listing was compared with."""

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
    assert again.keys() == ["a/b.txt"]
    assert again.get("a/b.txt") == IndexedFile(3, 10, 7, "crc", '"etag"')
    assert again.get("a/c.txt") is None
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
    assert index.get("fresh") == IndexedFile(5, 99, 1)
    listed = index.get("listed")
    assert listed is not None
    assert listed.mtime_ns is None
    assert not index.rebuild_needed
    index.close()


def test_bulk_lookups_see_rows_not_yet_written_and_forgotten_ones_go(tmp_path: Path) -> None:
    # GIVEN rows on disk, one recorded since (not flushed) and one forgotten since
    index = ChangeIndex.open(tmp_path / "i.sqlite", DEST)
    for i in range(1200):  # more than one query's worth of keys
        index.record(f"run/f{i:04d}", IndexedFile(i, i, i))
    index.flush()
    index.record("run/f0001", IndexedFile(7, 7, 7))
    index.forget("run/f0002")
    # WHEN a scan's thread looks them up through its own connection
    with index.reader() as reader:
        rows = reader.lookup([f"run/f{i:04d}" for i in range(1200)] + ["run/absent"])
    # THEN it sees the unflushed row, not the forgotten one, and every other row from disk
    assert rows["run/f0001"] == IndexedFile(7, 7, 7)
    assert "run/f0002" not in rows
    assert "run/absent" not in rows
    assert len(rows) == 1199
    assert rows["run/f1199"] == IndexedFile(1199, 1199, 1199)
    index.close()


def test_a_folder_digest_is_stored_only_while_its_rows_are_unchanged(tmp_path: Path) -> None:
    index = ChangeIndex.open(tmp_path / "i.sqlite", DEST)
    # GIVEN a listing compared with the rows of folder 'run' (as a scan does: write count first)
    before = index.writes("run")
    # WHEN nobody wrote the folder's rows meanwhile THEN its digest is stored
    index.set_digest("run", 42, before)
    assert index.digest("run") == 42
    # WHEN a row of the folder is written THEN the digest is dropped (and a row elsewhere leaves it alone)
    index.set_digest("other", 7, index.writes("other"))
    index.record("run/a", IndexedFile(1, 1, 1))
    assert index.digest("run") is None
    assert index.digest("other") == 7
    # WHEN someone else wrote between the comparison and the store THEN it is refused
    stale = index.writes("run")
    index.record("run/b", IndexedFile(1, 1, 1))
    index.set_digest("run", 43, stale)
    assert index.digest("run") is None
    # ... unless those writes were the caller's own (it verified the folder's changed files itself)
    index.set_digest("run", 44, stale, own=1)
    assert index.digest("run") == 44
    # WHEN the index is rebuilt from the bucket THEN every digest goes, and comparisons from before are refused
    index.replace_all([("run/a", IndexedFile(1, None))])
    assert index.digest("run") is None
    index.set_digest("run", 45, stale, own=1)
    assert index.digest("run") is None
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
