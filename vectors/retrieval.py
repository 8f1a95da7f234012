"""Retrieval for a caller: embed the query (recorded as the caller's usage, spent by its tool
call), search only what the caller's grants let it read. Shared by the `rag` and `vectors` toolkits."""

from typing import Any, cast

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from meshsite.errors import ErrorCode, MeshError
from observability.budgets import Who
from observability.usage import spent_by
from rooms.grants import Grants
from toolkits.base import CallContext

from .access import reader, sql_patterns
from .embeddings import EmbeddingFailed, NoEmbeddings
from .metering import embed, record_embedding
from .search import Filters, Hit, Query, search

MAX_K = 50


def who_calls(ctx: CallContext) -> Who:
    caller = ctx.caller
    agent = str(ctx.room().participants.get(caller.participant_id, {}).get("agent") or "")
    return Who(caller.project_id, caller.room_id, caller.room_name, caller.participant_id, caller.identity, agent)


def filters_from(arguments: dict[str, Any]) -> Filters:
    raw = arguments.get("filters") or {}
    return Filters(
        collection=raw.get("collection", arguments.get("collection")),
        source_kind=raw.get("source_kind"),
        source_prefix=raw.get("source_prefix"),
        metadata=raw.get("metadata") or {},
    )


def unavailable(error: NoEmbeddings) -> MeshError:
    return MeshError(ErrorCode.UNAVAILABLE, f"the room vector store is off: {error}")


async def retrieve(
    ctx: CallContext, tool: str, text: str, k: int, filters: Filters, *, ef_search: int | None = None
) -> list[Hit]:
    """Embeds the query on a worker thread of its own (a model can take a while and must not hold
    up the web node's database thread), then records the usage (spent by this call of `tool`) and
    searches on the database thread, within the caller's grants. Precondition: the caller may
    invoke the tool."""
    try:
        backend, model, embedded = await sync_to_async(embed, thread_sensitive=False)([text])
    except NoEmbeddings as error:
        raise unavailable(error) from None
    except EmbeddingFailed as error:
        raise MeshError(ErrorCode.UNAVAILABLE, f"the embedding model failed: {error}") from None
    who, by = who_calls(ctx), spent_by(ctx, tool)
    granted = cast(Grants, ctx.caller.grants)
    query = Query(
        room_id=ctx.caller.room_id,
        model=model,
        vector=embedded.vectors[0],
        k=min(k, MAX_K),
        filters=filters,
        readable=reader(granted),
        patterns=sql_patterns(granted),
        ef_search=ef_search,
    )

    def record_and_search() -> list[Hit]:
        record_embedding(who, [text], backend, model, embedded, purpose="query", by=by)
        return search(query)

    return await database_sync_to_async(record_and_search)()
