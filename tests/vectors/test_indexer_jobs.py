"""The Indexer's jobs run in this process (the task body, as the embedded default runs it on its
background threads): what is indexed, what is skipped and why, retries, and that running a job
twice changes nothing."""

import time

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


def test_a_threads_messages_are_queued_for_indexing_in_one_batch_per_period(room, settings, monkeypatch):
    from threads.actions import do_create_thread, do_post_message, do_update_message
    from vectors import signals
    from vectors.tasks import index_thread

    settings.MESHSITE_INDEX_THREAD_DELAY = 30.0  # the batch stays open for the whole test
    scheduled: list[tuple] = []
    monkeypatch.setattr(signals, "enqueue", lambda task, *args, countdown: scheduled.append((task, args, countdown)))
    monkeypatch.setattr(signals, "_batches", {})
    author = {"id": "p_1", "identity": "alice", "role": "user", "name": "Alice"}
    thread_id = do_create_thread(room.pk, "Plans", "alice")["id"]
    for text in ("We ship on Thursday.", "The party is on Friday.", "Bring cake."):
        do_post_message(room.pk, thread_id, author, [{"type": "text", "text": text}])
    do_update_message(room.pk, thread_id, 2, "alice", [{"type": "text", "text": "The party is on Saturday."}])
    assert [(task, args[:2], countdown) for task, args, countdown in scheduled] == [
        (index_thread, (room.pk, thread_id), 30.0)
    ]
    assert not IndexJob.objects.exists()  # nothing before the batch's task runs

    index_thread.apply(scheduled[0][1])
    jobs = IndexJob.objects.filter(room=room, source_ref=thread_id).order_by("source_part")
    assert [job.source_part for job in jobs] == ["1", "2", "3"]
    if run_index_job.app.conf.task_always_eager:
        assert wait_for_background_tasks(120)
    else:
        for job in jobs:
            run_index_job.apply((job.pk,))
    texts = set(Chunk.objects.filter(room=room, source_ref=thread_id).values_list("text", flat=True))
    assert texts == {"We ship on Thursday.", "The party is on Saturday.", "Bring cake."}

    index_thread.apply(scheduled[0][1])  # the same batch again: every message is queued at its version
    assert IndexJob.objects.filter(room=room, source_ref=thread_id).count() == 3


def test_a_message_after_the_batch_period_opens_the_next_batch(room, settings, monkeypatch):
    from threads.actions import do_create_thread, do_post_message
    from vectors import signals
    from vectors.tasks import index_thread

    settings.MESHSITE_INDEX_THREAD_DELAY = 0.2
    scheduled: list[tuple] = []
    monkeypatch.setattr(signals, "enqueue", lambda task, *args, countdown: scheduled.append(args))
    monkeypatch.setattr(signals, "_batches", {})
    author = {"id": "p_1", "identity": "alice", "role": "user", "name": "Alice"}
    thread_id = do_create_thread(room.pk, "Plans", "alice")["id"]
    do_post_message(room.pk, thread_id, author, [{"type": "text", "text": "First."}])
    time.sleep(0.3)  # the first batch's task has started by now
    do_post_message(room.pk, thread_id, author, [{"type": "text", "text": "Second."}])
    assert len(scheduled) == 2
    index_thread.apply(scheduled[1])
    assert "2" in IndexJob.objects.filter(source_ref=thread_id).values_list("source_part", flat=True)
    assert wait_for_background_tasks(120)  # its jobs, queued on commit (the embedded default's threads)
