"""The Indexer's jobs run in this process (the task body, as the embedded default runs it on its
background threads): what is indexed, what is skipped and why, retries, and that running a job
twice changes nothing."""

import pytest

from files.actions import do_write_file
from observability.tasks import wait_for_background_tasks
from rooms.models import Room
from vectors import embeddings
from vectors.embeddings import get_embedder
from vectors.models import Chunk, IndexJob
from vectors.tasks import run_index_job

pytestmark = pytest.mark.django_db(transaction=True)


def write(room: Room, path: str, content: bytes, content_type: str = "text/plain") -> IndexJob:
    stored = do_write_file(room=room, path=path, content=content, content_type=content_type, written_by="alice")
    job = IndexJob.objects.get(room=room, source_ref=path, version=str(stored.version))
    if run_index_job.app.conf.task_always_eager:
        assert wait_for_background_tasks(60)  # the embedded default already runs it, on its threads
    else:
        run_index_job.apply((job.pk,))  # no worker in this test: run the task body here
    job.refresh_from_db()
    return job


def test_html_is_indexed_as_its_text(room):
    job = write(room, "site/index.html", b"<h1>Menu</h1><p>Tomato soup today.</p><script>x()</script>", "text/html")
    assert (job.status, job.chunks) == ("done", 1)
    chunk = Chunk.objects.get(room=room)
    assert "Tomato soup today." in chunk.text and "x()" not in chunk.text
    assert chunk.metadata["path"] == "site/index.html" and chunk.metadata["content_type"] == "text/html"


def test_long_documents_become_overlapping_chunks(room, settings):
    settings.MESHSITE_CHUNK_SIZE, settings.MESHSITE_CHUNK_OVERLAP = 200, 60
    text = " ".join(f"Fact number {n} is about the topic {n}." for n in range(60))
    job = write(room, "facts.md", text.encode(), "text/markdown")
    chunks = list(Chunk.objects.filter(room=room).order_by("ordinal"))
    assert job.chunks == len(chunks) > 5 and all(len(c.text) <= 200 for c in chunks)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_unreadable_files_are_skipped_with_the_reason(room):
    job = write(room, "photo.png", b"\x89PNG\r\n\x1a\n....", "image/png")
    assert job.status == "skipped" and job.detail == "not indexed: cannot read image/png files"
    assert not Chunk.objects.exists()


def test_a_file_over_the_limit_is_skipped(room, settings):
    settings.MESHSITE_INDEX_MAX_BYTES = 1024
    job = write(room, "big.txt", b"word " * 1000)
    assert job.status == "skipped" and "larger than 1024 bytes" in job.detail


def test_running_a_finished_job_again_changes_nothing(room):
    job = write(room, "a.txt", b"Alpha beta gamma.")
    before = list(Chunk.objects.values_list("pk", "text"))
    run_index_job.apply((job.pk,))
    job.refresh_from_db()
    assert job.status == "done" and job.attempts == 1
    assert list(Chunk.objects.values_list("pk", "text")) == before


def test_a_job_whose_worker_died_is_run_again_and_finds_the_work_done(room):
    job = write(room, "a.txt", b"Alpha beta gamma.")
    IndexJob.objects.filter(pk=job.pk).update(status="running")  # as if the worker died after writing
    run_index_job.apply((job.pk,))
    job.refresh_from_db()
    assert (job.status, job.detail, job.attempts) == ("skipped", "already indexed at this version", 2)
    assert Chunk.objects.count() == 1


def test_without_an_embedding_backend_the_job_fails_saying_what_to_do(room, settings, monkeypatch):
    stored = do_write_file(room=room, path="a.txt", content=b"Alpha.", content_type="text/plain", written_by="alice")
    job = IndexJob.objects.get(room=room, version=str(stored.version))
    wait_for_background_tasks(60)
    IndexJob.objects.filter(pk=job.pk).update(status="queued")  # run it (again) without a backend
    Chunk.objects.all().delete()
    settings.MESHSITE_EMBEDDINGS = ""
    monkeypatch.setattr(embeddings, "local_model_installed", lambda: False)
    get_embedder.cache_clear()
    try:
        run_index_job.apply((job.pk,))
    finally:
        get_embedder.cache_clear()
    job.refresh_from_db()
    assert job.status == "failed" and "make install-embeddings" in job.detail
