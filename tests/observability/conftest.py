"""A project with a room, who spends in it, and a price table of made-up models (so the figures
do not depend on the seeded public prices)."""

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from observability.budgets import Who
from observability.models import Budget, ModelPrice
from rooms.actions.projects import do_create_project
from rooms.models import Project, Room

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
def project(db: None) -> Project:
    """In a rolled-back transaction unless the test is marked django_db(transaction=True) (races)."""
    return do_create_project("acme", "Acme")


@pytest.fixture
def room(project: Project) -> Room:
    return Room.objects.create(project=project, name="lobby")


@pytest.fixture
def who(room: Room) -> Who:
    return Who(room.project_id, room.pk, room.name, "p_assistant", "assistant", "assistant")


@pytest.fixture
def price() -> Callable[..., ModelPrice]:
    def make(model: str = "acme-chat", **figures: Any) -> ModelPrice:
        figures.setdefault("effective_from", LONG_AGO)
        for name in ("input_per_million", "cached_input_per_million", "output_per_million", "unit_price"):
            if isinstance(figures.get(name), str):
                figures[name] = Decimal(figures[name])
        return ModelPrice.objects.create(model=model, **figures)

    return make


@pytest.fixture
def budget(project: Project) -> Callable[..., Budget]:
    def make(amount: str, **kwargs: Any) -> Budget:
        return Budget.objects.create(project=project, amount=Decimal(amount), **kwargs)

    return make
