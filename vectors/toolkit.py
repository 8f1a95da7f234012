"""`vectors`: the room's vector store. `upsert` and `delete` manage custom sources (chunks an
agent brings itself); `search` is `rag.search` with a collection and `ef_search`; `status` shows
the Indexer's state. Files and threads are indexed by the Indexer only (vectors/signals.py).

Who sees what: search results follow the caller's read grants on each chunk's source
(vectors/access.py); custom chunks are visible to every caller of `vectors` and `rag`."""

from typing import Any

from asgiref.sync import sync_to_async

from meshsite.errors import ErrorCode, MeshError, invalid_params
from observability.usage import spent_by
from rooms.events import run_action
from toolkits.base import BuiltinToolkit, CallContext, builtin_tool

from .actions import do_delete_source, do_upsert_chunks
from .embeddings import EmbeddingFailed, NoEmbeddings
from .metering import embed, record_embedding
from .models import DEFAULT_COLLECTION, SourceKind
from .rag import FILTERS_SCHEMA, RESULTS_SCHEMA
from .retrieval import filters_from, retrieve, unavailable, who_calls
from .selectors import index_status

COLLECTION = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,63}$"}
SOURCE = {"type": "string", "minLength": 1, "maxLength": 512}
MAX_UPSERT_CHARS = 2_000_000


class VectorsToolkit(BuiltinToolkit):
    name = "vectors"
    description = "The room's vector store: upsert and delete chunks of your own sources, search, Indexer status."

    @builtin_tool(
        description="Replace the chunks of a custom `source` in a collection with `chunks` (text and metadata); "
        "each is embedded by the room's embedding model.",
        input_schema={
            "type": "object",
            "properties": {
                "collection": COLLECTION,
                "source": SOURCE,
                "chunks": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 512,
                    "items": {
                        "type": "object",
                        "properties": {
                            "text": {"type": "string", "minLength": 1, "maxLength": 20_000},
                            "metadata": FILTERS_SCHEMA["properties"]["metadata"],
                        },
                        "required": ["text"],
                        "additionalProperties": False,
                    },
                },
            },
            "required": ["source", "chunks"],
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": {"upserted": {"type": "integer"}}, "required": ["upserted"]},
    )
    async def upsert(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        items = arguments["chunks"]
        if sum(len(item["text"]) for item in items) > MAX_UPSERT_CHARS:
            raise invalid_params(f"chunks may hold at most {MAX_UPSERT_CHARS} characters in one upsert")
        who, by = who_calls(ctx), spent_by(ctx, "vectors.upsert")
        collection = arguments.get("collection", DEFAULT_COLLECTION)
        texts = [item["text"] for item in items]
        try:  # off the database thread: embedding takes a while
            backend, model, embedded = await sync_to_async(embed, thread_sensitive=False)(texts)
        except NoEmbeddings as error:
            raise unavailable(error) from None
        except EmbeddingFailed as error:
            raise MeshError(ErrorCode.UNAVAILABLE, f"the embedding model failed: {error}") from None

        def write() -> int:
            record_embedding(who, texts, backend, model, embedded, purpose="upsert", by=by)
            return do_upsert_chunks(ctx.caller.room_id, collection, arguments["source"], items, embedded.vectors, model)

        return {"upserted": await run_action(write)}

    @builtin_tool(
        description="Delete the chunks of a custom `source` (in one collection, or all).",
        input_schema={
            "type": "object",
            "properties": {"collection": COLLECTION, "source": SOURCE},
            "required": ["source"],
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": {"deleted": {"type": "integer"}}, "required": ["deleted"]},
    )
    async def delete(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        deleted = await run_action(
            do_delete_source,
            ctx.caller.room_id,
            SourceKind.CUSTOM,
            arguments["source"],
            collection=arguments.get("collection"),
        )
        return {"deleted": deleted}

    @builtin_tool(
        description="Top-k chunks most similar to `query`, among those the caller may read; `collection` and "
        "`filters` narrow it, `ef_search` trades speed for recall on Postgres.",
        input_schema={
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1, "maxLength": 4000},
                "k": {"type": "integer", "minimum": 1, "maximum": 50},
                "collection": COLLECTION,
                "filters": FILTERS_SCHEMA,
                "ef_search": {"type": "integer", "minimum": 1, "maximum": 1000},
            },
            "required": ["query"],
            "additionalProperties": False,
        },
        output_schema=RESULTS_SCHEMA,
    )
    async def search(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        hits = await retrieve(
            ctx,
            "vectors.search",
            arguments["query"],
            arguments.get("k", 5),
            filters_from(arguments),
            ef_search=arguments.get("ef_search"),
        )
        return {"results": [hit.to_record() for hit in hits]}

    @builtin_tool(
        description="The Indexer's state in this room: the embedding model, chunk counts, pending and failed jobs, "
        "and the latest jobs on sources the caller may read.",
        input_schema={
            "type": "object",
            "properties": {"limit": {"type": "integer", "minimum": 1, "maximum": 100}},
            "additionalProperties": False,
        },
        output_schema={"type": "object", "required": ["model", "chunks", "pending", "failed", "jobs"]},
    )
    async def status(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        return await sync_to_async(index_status)(ctx.caller.room_id, ctx.caller.grants, arguments.get("limit", 20))
