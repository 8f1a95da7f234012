"""Mail fixtures: the `support-bot` MailWorker service answering support@example.test in room
`support`, real MIME fixtures, and a recorder of what would be enqueued."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agents.actions import do_create_service
from agents.models import Service
from mail.models import Mailbox
from rooms.actions.rooms import do_create_room
from rooms.models import Project

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture(autouse=True)
def _no_in_process_sweep(settings: Any) -> None:
    """The web process's sweep would outlive each test's database; tests sweep explicitly."""
    settings.MESHSITE_MAIL_SWEEP_IN_PROCESS = False


@pytest.fixture
def mail_service(project: Project) -> Service:
    return do_create_service(project, "support-bot", class_path="tests.mail.agents.EchoMailWorker")


@pytest.fixture
def mailbox(project: Project, mail_service: Service) -> Mailbox:
    room = do_create_room(project, "support")
    return Mailbox.objects.create(service=mail_service, address="support@example.test", room=room, open=True)


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Records the tasks receiving mail would enqueue, instead of running them."""
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr("mail.actions.enqueue_on_commit", lambda task, *args, **kw: calls.append((task.name, *args)))
    return calls


PostRaw = Callable[..., Any]


@pytest.fixture
def post_raw(client: Any, api_key: str) -> PostRaw:
    """POSTs raw MIME to the raw endpoint with the project's API key (Django's test client)."""

    def post(raw: bytes, *, key: str | None = None, to: str = "") -> Any:
        url = "/mail/inbound/raw/" + (f"?to={to}" if to else "")
        headers = {"Authorization": f"Bearer {key if key is not None else api_key}"}
        return client.post(url, data=raw, content_type="message/rfc822", headers=headers)

    return post
