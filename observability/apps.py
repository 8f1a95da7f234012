from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class ObservabilityConfig(AppConfig):
    name = "observability"
    verbose_name = "Observability and cost"

    def ready(self) -> None:
        from .budget_events import announce_budget_change
        from .models import Budget, ModelPrice
        from .pricing import forget_prices

        post_save.connect(forget_prices, sender=ModelPrice, dispatch_uid="observability.forget_prices.save")
        post_delete.connect(forget_prices, sender=ModelPrice, dispatch_uid="observability.forget_prices.delete")
        post_save.connect(announce_budget_change, sender=Budget, dispatch_uid="observability.budgets_changed.save")
        post_delete.connect(announce_budget_change, sender=Budget, dispatch_uid="observability.budgets_changed.delete")
