"""Chunks end on paragraph, sentence or word boundaries, fit the size, and overlap."""

import itertools

import pytest

from vectors.chunking import ChunkingOptions, chunk_text

SENTENCES = [f"Sentence number {n} says something about topic {n % 7}." for n in range(80)]


def test_short_text_is_one_chunk():
    assert chunk_text("One paragraph.\n\nAnother one.") == ["One paragraph.\n\nAnother one."]


def test_chunks_fit_the_size_and_end_on_sentence_boundaries():
    chunks = chunk_text(" ".join(SENTENCES), ChunkingOptions(size=300, overlap=60))
    assert len(chunks) > 5
    assert all(len(chunk) <= 300 for chunk in chunks)
    assert all(chunk.endswith(".") for chunk in chunks)
    # every sentence is in some chunk, whole
    assert all(any(sentence in chunk for chunk in chunks) for sentence in SENTENCES)


def test_neighbouring_chunks_share_their_boundary_sentences():
    chunks = chunk_text(" ".join(SENTENCES), ChunkingOptions(size=300, overlap=60))
    for first, second in itertools.pairwise(chunks):
        last_sentence = first.rsplit(". ", 1)[-1]
        assert second.startswith(last_sentence.rstrip("."))


def test_no_overlap_means_no_repeated_sentence():
    chunks = chunk_text(" ".join(SENTENCES), ChunkingOptions(size=300, overlap=0))
    assert sum(chunk.count("Sentence number") for chunk in chunks) == len(SENTENCES)


def test_paragraphs_are_kept_together_when_they_fit():
    paragraphs = [f"Paragraph {n}. " + "Words here. " * 8 for n in range(10)]
    chunks = chunk_text("\n\n".join(paragraphs), ChunkingOptions(size=250, overlap=0))
    for chunk in chunks:
        assert chunk.startswith("Paragraph ")


def test_a_word_longer_than_a_chunk_is_cut():
    chunks = chunk_text("x" * 130, ChunkingOptions(size=50, overlap=0))
    assert chunks == ["x" * 50, "x" * 50, "x" * 30]


def test_bad_options_are_refused():
    with pytest.raises(ValueError):
        ChunkingOptions(size=100, overlap=100)
    with pytest.raises(ValueError):
        ChunkingOptions(size=5)
