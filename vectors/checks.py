"""Start-up checks: say at once when no embedding backend is available (docs/rag.md)."""

from typing import Any

from django.core.checks import CheckMessage, Warning, register

from .embeddings import NoEmbeddings, get_embedder


@register()
def embeddings_available(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        get_embedder()
    except NoEmbeddings as error:
        return [
            Warning(
                "The room vector store and the Indexer are off: " + str(error),
                hint="make install-embeddings, or MESHSITE_EMBEDDINGS=openai (docs/rag.md)",
                id="vectors.W001",
            )
        ]
    return []
