from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents and services"

    def ready(self) -> None:
        from rooms.reservations import register_reservation

        from .reservations import service_toolkit_reservation

        register_reservation(service_toolkit_reservation)

        from queues.signals import message_sent

        from .workers import on_message_sent

        # a message sent to a queue a Worker service is bound to wakes that Worker (agents/workers.py)
        message_sent.connect(on_message_sent, dispatch_uid="agents.workers")
