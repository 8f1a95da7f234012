from django.apps import AppConfig


class QueuesConfig(AppConfig):
    name = "queues"
    label = "queues"
    verbose_name = "Queues"

    def ready(self) -> None:
        from .signals import message_sent
        from .waiters import on_message_sent

        message_sent.connect(on_message_sent, dispatch_uid="queues.waiters")
