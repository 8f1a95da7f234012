"""`meshsite agent run` argument handling offline (the live run is in test_live.py)."""

from __future__ import annotations

import io

import pytest
from meshsite_client import cli
from meshsite_client.agents.cli import UsageError, load_agent, main

from . import example_agents


def run(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    code = cli.main(list(argv), stderr=err)
    return code, err.getvalue()


def test_meshsite_agent_is_routed_to_the_agent_command_line():
    code, err = run("agent", "run", "no_such_module:X", "--url", "ws://h/rooms/r/ws", "--token", "t")
    assert code == 2 and "cannot import 'no_such_module'" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "tests.agents_client.example_agents:Shouter", "--token", "t"], "--url is required"),
        (["run", "tests.agents_client.example_agents:Shouter", "--url", "ws://h"], "--token is required"),
        (["run", "nocolon", "--url", "ws://h", "--token", "t"], "is not MODULE:CLASS"),
        (["run", "tests.agents_client.example_agents:Nope", "--url", "ws://h", "--token", "t"], "no attribute"),
        (
            ["run", "tests.agents_client.example_agents:Shouter", "--url", "ws://h", "--token", "t", "--config", "[1]"],
            "must be a JSON object",
        ),
        (
            ["run", "tests.agents_client.example_agents:Shouter", "--url", "ws://h", "--token", "t", "--config", "{"],
            "not valid JSON",
        ),
        (["walk"], "invalid choice"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(argv, message, monkeypatch):
    monkeypatch.delenv("MESHSITE_URL", raising=False)
    monkeypatch.delenv("MESHSITE_TOKEN", raising=False)
    err = io.StringIO()
    assert main(argv, stderr=err) == 2
    assert message in err.getvalue() and err.getvalue().count("\n") == 1


def test_a_connection_failure_exits_1():
    err = io.StringIO()
    code = main(
        ["run", "tests.agents_client.example_agents:Shouter", "--url", "ws://127.0.0.1:9/rooms/r/ws", "--token", "t"],
        stderr=err,
    )
    assert code == 1 and "ConnectionLost" in err.getvalue()


def test_load_agent_calls_classes_and_factories_with_the_config_and_takes_instances_as_they_are(monkeypatch):
    agent = load_agent("tests.agents_client.example_agents:Shouter", {"suffix": "?", "title": "Q"})
    assert isinstance(agent, example_agents.Shouter) and (agent.suffix, agent.title) == ("?", "Q")
    monkeypatch.setattr(example_agents, "ready", example_agents.Shouter(name="ready"), raising=False)
    assert load_agent("tests.agents_client.example_agents:ready").name == "ready"
    with pytest.raises(UsageError, match="needs a class or a factory"):
        load_agent("tests.agents_client.example_agents:ready", {"x": 1})
    monkeypatch.setattr(example_agents, "make", lambda **kw: example_agents.Shouter(name=kw["n"]), raising=False)
    assert load_agent("tests.agents_client.example_agents:make", {"n": "made"}).name == "made"
    monkeypatch.setattr(example_agents, "notagent", lambda: 42, raising=False)
    with pytest.raises(UsageError, match="not a SingleRoomAgent"):
        load_agent("tests.agents_client.example_agents:notagent")
    with pytest.raises(UsageError, match="cannot create"):
        load_agent("tests.agents_client.example_agents:Shouter", {"name": "bad name"})
