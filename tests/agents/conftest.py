from collections.abc import Iterator

import pytest

from agents.actions import do_create_service
from rooms.models import Project
from tests.support.servers import AgentHostProcess, ServerProcess


@pytest.fixture
def services(project: Project) -> dict[str, object]:
    return {
        name: do_create_service(project, name, class_path=path)
        for name, path in {
            "word-counter": "agents.demo.WordCounter",
            "flaky": "tests.agents.sample_agents.Flaky",
            "slow": "tests.agents.sample_agents.Slow",
            "broken": "tests.agents.sample_agents.Broken",
            "delegating": "tests.agents.sample_agents.Delegating",
        }.items()
    }


@pytest.fixture
def agent_host(server: ServerProcess, services: dict[str, object]) -> Iterator[AgentHostProcess]:
    host = AgentHostProcess(server).start()
    yield host
    host.stop()
