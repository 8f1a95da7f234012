"""`agents`: call services into the room, ask agents, list them, and reach any tool through them."""

import asyncio
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from agents.actions import dispatch_progress, do_dispatch, do_expire_dispatch, raise_for_dispatch
from agents.models import Dispatch, Service
from agents.webhooks import invite_webhook_service
from meshsite.errors import ErrorCode, MeshError, not_found, permission_denied
from rooms.models import Room
from toolkits.base import BuiltinToolkit, CallContext, builtin_tool
from toolkits.invocation import InvokeRequest

OBJECT = {"type": "object"}
ANY_ARGUMENTS = {"type": "object", "default": {}}
TIMEOUT = {"type": "number", "exclusiveMinimum": 0}


class AgentsToolkit(BuiltinToolkit):
    name = "agents"
    description = "Call agent services into the room, ask agents for answers, list agents and toolkits."

    @builtin_tool(
        description="Invite a service (a deployed agent) into this room by name; returns once it has joined.",
        input_schema={
            "type": "object",
            "properties": {"name": {"type": "string"}, "arguments": ANY_ARGUMENTS, "timeout": TIMEOUT},
            "required": ["name"],
            "additionalProperties": False,
        },
        output_schema=OBJECT,
    )
    async def call(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        name = arguments["name"]
        if not ctx.caller.grants.may("agents", "call", name):
            raise permission_denied(f"this token may not call the agent {name!r}")
        room = await sync_to_async(Room.objects.select_related("project").get)(pk=ctx.caller.room_id)
        dispatch, created = await sync_to_async(do_dispatch)(
            room, name, arguments.get("arguments") or {}, ctx.caller.identity
        )
        if created and dispatch.service.kind == Service.Kind.WEBHOOK:
            await invite_webhook_service(dispatch, room)
        timeout = min(arguments.get("timeout", settings.MESHSITE_AGENT_CALL_TIMEOUT), ctx.remaining())
        deadline = time.monotonic() + timeout
        while True:
            dispatch = await sync_to_async(dispatch_progress)(dispatch.pk)
            raise_for_dispatch(dispatch)
            if dispatch.status == Dispatch.Status.RUNNING and dispatch.participant_id:
                return {**dispatch.to_record(), "created": created}
            if time.monotonic() >= deadline:
                if await sync_to_async(do_expire_dispatch)(dispatch.pk):
                    raise MeshError(
                        ErrorCode.TIMEOUT, f"no agent host picked up {name!r} within {timeout:g}s; is one running?"
                    )
                raise MeshError(ErrorCode.TIMEOUT, f"the agent {name!r} did not join within {timeout:g}s")
            await asyncio.sleep(settings.MESHSITE_AGENT_HOST_POLL_SECONDS / 2)

    @builtin_tool(
        description="Ask an agent in the room (a TaskRunner) and get its validated answer.",
        input_schema={
            "type": "object",
            "properties": {"agent": {"type": "string"}, "arguments": ANY_ARGUMENTS, "timeout": TIMEOUT},
            "required": ["agent"],
            "additionalProperties": False,
        },
    )
    async def ask(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        agent = arguments["agent"]
        if not ctx.caller.grants.may("agents", "ask", agent):
            raise permission_denied(f"this token may not ask the agent {agent!r}")
        room = ctx.room()
        # Only a participant whose token vouches for the agent (minted by the agent host or a
        # service invitation) answers asks meant for it, never one that merely says so.
        host_id = next(
            (
                participant_id
                for (participant_id, toolkit_name) in room.hosted
                if toolkit_name == agent and _vouched_agent(room.participants.get(participant_id)) == agent
            ),
            None,
        )
        if host_id is None:
            raise not_found(f"no agent named {agent!r} that answers asks is in this room; call it with agents.call")
        request = InvokeRequest(
            agent,
            "ask",
            arguments.get("arguments") or {},
            host_id,
            None,
            min(arguments.get("timeout", ctx.remaining()), ctx.remaining()),
            None,
        )
        # The agents.ask grant for this agent is the whole authorisation: no second toolkits grant.
        # The agent's progress reaches the asker as progress of this call.
        return await ctx.invoke(request, authorised=True, on_progress=ctx.report_progress)

    @builtin_tool(
        description="List the agents in the room and the services that can be called into it.",
        input_schema={"type": "object", "additionalProperties": False},
        output_schema={"type": "object", "properties": {"agents": {"type": "array"}}},
    )
    async def list(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        room_view = ctx.room()
        listed: dict[str, dict[str, Any]] = {}
        room = await sync_to_async(Room.objects.get)(pk=ctx.caller.room_id)
        services = await sync_to_async(lambda: [s.to_record() for s in Service.objects.callable_in(room)])()
        for service in services:
            listed[service["name"]] = {**service, "callable": True, "present": False, "participant_id": None}
        for participant in room_view.participants.values():
            name = _vouched_agent(participant)
            if name is None:
                continue
            # The token vouches for the name; the attributes only describe the agent.
            declared = participant.get("attributes", {}).get("agent")
            declared = declared if isinstance(declared, dict) else {}
            entry = listed.setdefault(name, {"name": name, "callable": False})
            # what the agent says of itself, else what its service says (an empty title is unsaid)
            entry.update({key: declared.get(key) or entry.get(key) for key in ("title", "description")})
            entry.update({key: declared.get(key, entry.get(key)) for key in ("input_schema", "output_schema", "kind")})
            entry.update({"present": True, "participant_id": participant["id"]})
        for entry in listed.values():
            for key in ("title", "description"):
                entry[key] = entry.get(key) or ""
            for key in ("input_schema", "output_schema"):
                entry.setdefault(key, None)
        return {"agents": sorted(listed.values(), key=lambda entry: entry["name"])}

    @builtin_tool(
        description="List the toolkits this participant may invoke (or one participant's).",
        input_schema={
            "type": "object",
            "properties": {"participant_id": {"type": "string"}},
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": {"toolkits": {"type": "array"}}},
    )
    async def list_toolkits(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        host_id = arguments.get("participant_id")
        if host_id is not None and host_id not in ctx.room().participants:
            raise not_found(f"participant {host_id!r} is not in this room")
        return {"toolkits": ctx.visible_toolkits(host_id)}

    @builtin_tool(
        description="Invoke any tool in the room, as tools.invoke does.",
        input_schema={
            "type": "object",
            "properties": {
                "toolkit": {"type": "string"},
                "tool": {"type": "string"},
                "arguments": ANY_ARGUMENTS,
                "participant_id": {"type": "string"},
                "timeout": TIMEOUT,
            },
            "required": ["toolkit", "tool"],
            "additionalProperties": False,
        },
    )
    async def invoke_tool(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        request = InvokeRequest(
            arguments["toolkit"],
            arguments["tool"],
            arguments.get("arguments") or {},
            arguments.get("participant_id"),
            None,
            min(arguments.get("timeout", ctx.remaining()), ctx.remaining()),
            None,
        )
        # as tools.invoke: the tool's progress reaches the caller as progress of this call
        return await ctx.invoke(request, on_progress=ctx.report_progress)


def _vouched_agent(participant: dict[str, Any] | None) -> str | None:
    name = (participant or {}).get("agent")
    return name if isinstance(name, str) and name else None
