"""`rag`: retrieval for agents. `rag.search {query, k?, filters?}` returns the room's chunks most
similar to `query`, best first, each with its source, score and text; only chunks from sources
the caller may read (storage read grants for files, threads read grants for threads) are ever
considered. Give a ChatBot `tool_toolkits=["rag"]` to answer from the room's documents
(docs/rag.md)."""

from typing import Any

from toolkits.base import BuiltinToolkit, CallContext, builtin_tool

from .retrieval import filters_from, retrieve

FILTERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "collection": {"type": "string", "minLength": 1, "maxLength": 64},
        "source_kind": {"enum": ["file", "thread", "custom"]},
        "source_prefix": {"type": "string", "minLength": 1, "maxLength": 1024},
        "metadata": {
            "type": "object",
            "maxProperties": 16,
            "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
        },
    },
    "additionalProperties": False,
}
HIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "source": {"type": "string"},
        "score": {"type": "number"},
        "text": {"type": "string"},
        "metadata": {"type": "object"},
    },
    "required": ["source", "score", "text"],
}
RESULTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"results": {"type": "array", "items": HIT_SCHEMA}},
    "required": ["results"],
}


class RagToolkit(BuiltinToolkit):
    name = "rag"
    description = "Search the room's documents, threads and email for passages relevant to a question."

    @builtin_tool(
        description="Find the passages of the room's documents most relevant to `query`. Cite results by "
        "their `source` (file:<path> or thread:<id>#<seq>).",
        input_schema={
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1, "maxLength": 4000},
                "k": {"type": "integer", "minimum": 1, "maximum": 50},
                "filters": FILTERS_SCHEMA,
            },
            "required": ["query"],
            "additionalProperties": False,
        },
        output_schema=RESULTS_SCHEMA,
    )
    async def search(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        hits = await retrieve(ctx, "rag.search", arguments["query"], arguments.get("k", 5), filters_from(arguments))
        return {"results": [hit.to_record() for hit in hits]}
