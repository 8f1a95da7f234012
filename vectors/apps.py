from django.apps import AppConfig


class VectorsConfig(AppConfig):
    name = "vectors"
    verbose_name = "Vector store and Indexer"

    def ready(self) -> None:
        from . import checks, signals  # noqa: F401  (system checks; the Indexer's receivers)
