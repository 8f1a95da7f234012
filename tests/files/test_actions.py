"""Writes, moves and deletes: blobs swapped under the row, versions per path, events on commit only."""

import hashlib
import io
import threading

import pytest
from django.db import connections, transaction
from meshsite_client.protocol import ErrorCode

from files.actions import do_delete_file, do_move_file, do_write_file
from files.blobs import blob_storage
from files.models import StoredFile
from files.selectors import get_file, list_files, open_file
from files.signals import file_changed
from meshsite.errors import MeshError


def read(room, path: str) -> bytes:
    with open_file(get_file(room, path)) as opened:
        return opened.read()


def blobs_of(room) -> list[str]:
    storage = blob_storage()
    folder = f"rooms/{room.pk}"
    return storage.listdir(folder)[1] if storage.exists(folder) else []


@pytest.fixture
def changes():
    seen: list[dict] = []

    def receiver(sender, **kwargs):
        seen.append(kwargs)

    file_changed.connect(receiver)
    yield seen
    file_changed.disconnect(receiver)


def test_a_written_file_reads_back_with_its_metadata(room):
    stored = do_write_file(room=room, path="notes/plan.md", content=b"# Plan\n", content_type=None, written_by="alice")
    assert (stored.size, stored.content_type, stored.version, stored.written_by) == (7, "text/markdown", 1, "alice")
    assert stored.sha256 == hashlib.sha256(b"# Plan\n").hexdigest()
    assert read(room, "notes/plan.md") == b"# Plan\n"


def test_it_streams_from_a_file_object(room):
    source = io.BytesIO(b"x" * 3_000_000)
    stored = do_write_file(room=room, path="big.bin", content=source, content_type="application/x-test", written_by="a")
    assert stored.size == 3_000_000 and read(room, "big.bin") == b"x" * 3_000_000


def test_versions_keep_increasing_across_delete_and_recreate(room):
    assert do_write_file(room=room, path="a.txt", content=b"1", content_type=None, written_by="a").version == 1
    assert do_write_file(room=room, path="a.txt", content=b"2", content_type=None, written_by="a").version == 2
    do_delete_file(room=room, path="a.txt", deleted_by="a")
    with pytest.raises(MeshError) as raised:
        get_file(room, "a.txt")
    assert raised.value.code == ErrorCode.NOT_FOUND
    assert do_write_file(room=room, path="a.txt", content=b"3", content_type=None, written_by="a").version == 4
    assert len(blobs_of(room)) == 1  # replaced and deleted blobs are gone


def test_a_file_over_the_limit_is_refused_and_leaves_nothing_behind(room, settings):
    settings.MESHSITE_STORAGE_MAX_BYTES = 1000
    do_write_file(room=room, path="keep.txt", content=b"small", content_type=None, written_by="a")
    with pytest.raises(MeshError) as raised:
        do_write_file(room=room, path="keep.txt", content=io.BytesIO(b"y" * 5000), content_type=None, written_by="a")
    assert raised.value.code == ErrorCode.PAYLOAD_TOO_LARGE and raised.value.data["limit"] == 1000
    assert read(room, "keep.txt") == b"small" and get_file(room, "keep.txt").version == 1
    assert len(blobs_of(room)) == 1


def test_a_move_renames_without_copying_and_replaces_the_destination(room):
    do_write_file(room=room, path="draft.md", content=b"draft", content_type=None, written_by="a")
    do_write_file(room=room, path="final.md", content=b"old final", content_type=None, written_by="a")
    moved = do_move_file(room=room, source="draft.md", destination="final.md", moved_by="b")
    assert (moved.path, moved.version, moved.written_by) == ("final.md", 2, "b")
    assert read(room, "final.md") == b"draft"
    assert [f["path"] for f in list_files(room)["files"]] == ["final.md"]
    assert len(blobs_of(room)) == 1
    with pytest.raises(MeshError) as raised:
        do_move_file(room=room, source="draft.md", destination="elsewhere.md", moved_by="b")
    assert raised.value.code == ErrorCode.NOT_FOUND


def test_deleting_a_missing_file_is_not_found(room):
    with pytest.raises(MeshError) as raised:
        do_delete_file(room=room, path="nope", deleted_by="a")
    assert raised.value.code == ErrorCode.NOT_FOUND


def test_bad_content_types_are_refused(room):
    with pytest.raises(MeshError) as raised:
        do_write_file(room=room, path="a", content=b"", content_type="text/plain\r\nX-Evil: 1", written_by="a")
    assert raised.value.code == ErrorCode.INVALID_PARAMS


def test_the_signal_is_sent_after_commit_and_never_for_a_rollback(room, changes):
    with transaction.atomic():
        do_write_file(room=room, path="a.txt", content=b"1", content_type=None, written_by="alice")
        assert changes == []  # not before commit
    assert [(c["path"], c["action"], c["version"], c["by"]) for c in changes] == [("a.txt", "written", 1, "alice")]
    assert changes[0]["file"].pk == get_file(room, "a.txt").pk and changes[0]["previous_path"] is None

    changes.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        do_write_file(room=room, path="b.txt", content=b"2", content_type=None, written_by="alice")
        raise RuntimeError("roll back")
    assert changes == []
    assert not StoredFile.objects.filter(path="b.txt", deleted_at__isnull=True).exists()

    do_move_file(room=room, source="a.txt", destination="c.txt", moved_by="bob")
    do_delete_file(room=room, path="c.txt", deleted_by="bob")
    assert [(c["action"], c["path"], c["previous_path"], c["version"]) for c in changes] == [
        ("moved", "c.txt", "a.txt", 1),
        ("deleted", "c.txt", None, 2),
    ]
    assert changes[1]["file"] is None


def test_concurrent_writes_to_one_path_leave_one_complete_writer_and_consistent_versions(room):
    writers = 8
    contents = [bytes([65 + index]) * (1_000_000 + index) for index in range(writers)]
    version_of: dict[int, int] = {}  # writer -> the version its commit got
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write(index: int) -> None:
        try:
            start.wait()
            stored = do_write_file(
                room=room, path="shared.bin", content=contents[index], content_type=None, written_by=f"w{index}"
            )
            version_of[index] = stored.version
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(index,)) for index in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(version_of.values()) == list(range(1, writers + 1))  # each commit got its own version
    final = get_file(room, "shared.bin")
    assert final.version == writers
    data = read(room, "shared.bin")
    assert data in contents  # one whole writer's content, never a mix
    assert (final.size, final.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    last = next(index for index, version in version_of.items() if version == writers)
    assert data == contents[last] and final.written_by == f"w{last}"  # the last to commit wins
    assert len(blobs_of(room)) == 1


def test_contents_can_live_in_any_django_storage_backend(room, settings):
    settings.STORAGES = {**settings.STORAGES, "files": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}
    do_write_file(
        room=room, path="mem/a.txt", content=io.BytesIO(b"in memory" * 1000), content_type=None, written_by="a"
    )
    do_write_file(room=room, path="mem/a.txt", content=b"replaced", content_type=None, written_by="a")
    assert read(room, "mem/a.txt") == b"replaced"
    assert len(blobs_of(room)) == 1
    do_delete_file(room=room, path="mem/a.txt", deleted_by="a")
    assert blobs_of(room) == []
