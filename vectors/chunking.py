"""Splitting text into chunks on paragraph, then sentence, then word boundaries.

A chunk is at most `size` characters (a single word longer than that is cut). Neighbouring chunks
share about `overlap` characters: the next chunk starts with the last whole sentences (or words)
of the previous one that fit in `overlap`, so a fact split by a boundary is whole in one of them.
"""

import re
from dataclasses import dataclass

PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# a sentence ends at . ! ? (optionally closed by quotes/brackets) followed by whitespace
SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
WHITESPACE = re.compile(r"[ \t\r\f\v]+")


@dataclass(frozen=True)
class ChunkingOptions:
    size: int = 800
    overlap: int = 120

    def __post_init__(self) -> None:
        if self.size < 20:
            raise ValueError("chunk size must be at least 20 characters")
        if not 0 <= self.overlap < self.size:
            raise ValueError("chunk overlap must be at least 0 and smaller than the chunk size")


def _pieces(text: str, size: int) -> list[str]:
    """Units no longer than `size`, each ending at the most natural boundary available:
    paragraphs, else sentences, else words, else hard cuts."""
    pieces: list[str] = []
    for paragraph in PARAGRAPH_BREAK.split(text):
        paragraph = WHITESPACE.sub(" ", paragraph).strip()
        if not paragraph:
            continue
        if len(paragraph) <= size:
            pieces.append(paragraph + "\n\n")
            continue
        for sentence in SENTENCE_END.split(paragraph):
            sentence = sentence.strip()
            if not sentence:
                continue
            if len(sentence) <= size:
                pieces.append(sentence + " ")
                continue
            for word in sentence.split():
                while len(word) > size:
                    pieces.append(word[:size])
                    word = word[size:]
                pieces.append(word + " ")
        pieces[-1] = pieces[-1].rstrip() + "\n\n"
    return pieces


def _tail(pieces: list[str], overlap: int) -> list[str]:
    """The last pieces that fit in `overlap` characters, to start the next chunk with."""
    tail: list[str] = []
    length = 0
    for piece in reversed(pieces):
        if length + len(piece) > overlap:
            break
        tail.insert(0, piece)
        length += len(piece)
    return tail


def chunk_text(text: str, options: ChunkingOptions | None = None) -> list[str]:
    options = options or ChunkingOptions()
    chunks: list[str] = []
    current: list[str] = []
    length = 0
    fresh = 0  # pieces in `current` that no earlier chunk holds
    for piece in _pieces(text, options.size):
        if current and length + len(piece) > options.size:
            chunks.append("".join(current).strip())
            current = _tail(current, options.overlap)
            # the overlap must leave room for the new piece
            while current and sum(map(len, current)) + len(piece) > options.size:
                current.pop(0)
            length = sum(map(len, current))
            fresh = 0
        current.append(piece)
        length += len(piece)
        fresh += 1
    if current and fresh:
        chunks.append("".join(current).strip())
    return [chunk for chunk in chunks if chunk]
