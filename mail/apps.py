from django.apps import AppConfig


class MailConfig(AppConfig):
    name = "mail"
    verbose_name = "Mail"

    def ready(self) -> None:
        from anymail.signals import inbound  # type: ignore[import-untyped]

        from . import sweep  # noqa: F401  (Celery workers start the mail sweep when ready)
        from .signals import on_inbound

        inbound.connect(on_inbound, dispatch_uid="mail.on_inbound")
