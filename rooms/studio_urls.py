"""Studio's pages live in the `studio` package; this module keeps the project's URL include."""

from studio.urls import urlpatterns

__all__ = ["urlpatterns"]
