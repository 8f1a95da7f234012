from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents and services"

    def ready(self) -> None:
        from rooms.reservations import register_reservation

        from .reservations import service_toolkit_reservation

        register_reservation(service_toolkit_reservation)
