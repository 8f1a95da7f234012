"""The metering proxy over a real server process whose upstream is the fake OpenAI server.

`upstream` is `tests.support.fake_openai.FakeOpenAI` (one per module, reset before each test),
plus `POST /v1/embeddings` (tests/support/fake_embeddings.py); it insists on the proxy's own upstream
key, so a request that reaches it with the caller's credential fails. `other_upstream` is the
per-project upstream of project `other` (MESHSITE_PROXY_UPSTREAMS); project `nowhere`'s upstream
does not listen.
"""

import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings

from observability.models import ModelPrice, UsageRecord
from rooms.actions.projects import do_create_api_key, do_create_project
from rooms.models import Project
from tests.observability.conftest import LONG_AGO
from tests.support.fake_embeddings import FakeOpenAIEmbeddings
from tests.support.fake_openai import RecordedRequest
from tests.support.servers import ServerProcess, free_port

UPSTREAM_KEY = "sk-upstream-secret"


class Upstream(FakeOpenAIEmbeddings):
    def wait_done(self, timeout: float = 10) -> RecordedRequest:
        """The last request, once the fake finished answering it."""
        request = self.wait_for_requests(1, timeout)[-1]
        assert request.done.wait(timeout), "the upstream never finished its answer"
        return request


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream(api_key=UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture(scope="module")
def other_upstream() -> Iterator[Upstream]:
    with Upstream(api_key="sk-other-upstream") as fake:
        yield fake


@pytest.fixture(scope="module", params=["django", "mounted"])
def proxy_server(
    request: pytest.FixtureRequest,
    django_db_setup: None,
    django_db_blocker: Any,
    upstream: Upstream,
    other_upstream: Upstream,
) -> Iterator[ServerProcess]:
    """A server with the proxy mounted ahead of Django (`mounted`, as `meshsite.asgi` wires it)
    or served through Django's URLs (`django`, `application_proxy_through_django`): every test
    runs on both."""
    env = {
        "MESHSITE_PROXY_UPSTREAM_URL": upstream.base_url,
        "MESHSITE_PROXY_UPSTREAM_KEY": UPSTREAM_KEY,
        "MESHSITE_PROXY_UPSTREAMS": json.dumps(
            {
                "other": {"url": other_upstream.base_url, "key": "sk-other-upstream"},
                # nothing listens there
                "nowhere": {"url": f"http://127.0.0.1:{free_port()}/v1"},
            }
        ),
        "MESHSITE_PROXY_DEFAULT_OUTPUT_TOKENS": "1000",
        "MESHSITE_PROXY_MAX_REQUEST_BYTES": str(256 * 1024),
    }
    if request.param == "django":
        env["DJANGO_SETTINGS_MODULE"] = "tests.proxy.settings_through_django"
    with django_db_blocker.unblock():
        process = ServerProcess(redis_url=settings.REDIS_URL or None, env=env).start()
    process.mode = request.param  # type: ignore[attr-defined]
    yield process
    process.stop()


@pytest.fixture
def base_url(proxy_server: ServerProcess, upstream: Upstream, other_upstream: Upstream) -> str:
    upstream.reset()
    other_upstream.reset()
    return f"{proxy_server.http_url}/v1"


@pytest.fixture
def prices(project: Project) -> list[ModelPrice]:
    """acme-chat: 2.50 / 1.25 cached / 10.00 per million; acme-embed: 0.10 per million."""
    return [
        ModelPrice.objects.create(
            model="acme-chat*",
            input_per_million=Decimal("2.50"),
            cached_input_per_million=Decimal("1.25"),
            output_per_million=Decimal("10.00"),
            effective_from=LONG_AGO,
        ),
        ModelPrice.objects.create(
            model="acme-embed", kind="embedding", input_per_million=Decimal("0.10"), effective_from=LONG_AGO
        ),
    ]


@pytest.fixture
def agent_token(mint: Callable[..., str]) -> str:
    return mint("researcher", role="agent", agent="researcher", room="lab")


@pytest.fixture
def other_project(project: Project) -> Project:
    return do_create_project("other", "Other")


@pytest.fixture
def other_key(other_project: Project) -> str:
    return do_create_api_key(other_project, "other-tests")[1]


def wait_for_usage(count: int = 1, timeout: float = 10, **filters: Any) -> list[UsageRecord]:
    """The usage records (oldest first) once `count` of them exist: the proxy writes them after
    the response has gone."""
    deadline = time.monotonic() + timeout
    while True:
        records = list(UsageRecord.objects.filter(**filters).order_by("created_at", "pk"))
        if len(records) >= count or time.monotonic() > deadline:
            assert len(records) == count, f"{len(records)} usage record(s), expected {count}"
            return records
        time.sleep(0.02)
