"""`tools.invoke` parameters as the server reads them; built-in toolkits build them too, to call
other tools through the room (`CallContext.invoke`)."""

import math
from dataclasses import dataclass
from typing import Any

from meshsite_client.protocol import TOOL_NAME_RE, TOOLKIT_NAME_RE

from meshsite.errors import invalid_params
from meshsite.limits import LIMITS

MAX_CALL_ID_LENGTH = 64
MAX_NAME_LENGTH = 64


@dataclass(frozen=True)
class InvokeRequest:
    toolkit: str
    tool: str
    arguments: dict[str, Any]
    participant_id: str | None
    on_behalf_of_id: str | None
    timeout: float
    handle: str | None

    def __post_init__(self) -> None:
        # Names reach the database (lookups, the ledger): only well-formed ones get that far.
        if not TOOLKIT_NAME_RE.match(self.toolkit) or not TOOL_NAME_RE.match(self.tool):
            raise invalid_params(f"toolkit must match {TOOLKIT_NAME_RE.pattern} and tool {TOOL_NAME_RE.pattern}")

    @classmethod
    def parse(cls, params: dict[str, Any]) -> "InvokeRequest":
        toolkit, tool = params.get("toolkit"), params.get("tool")
        if not isinstance(toolkit, str) or not isinstance(tool, str):
            raise invalid_params("toolkit and tool must be strings")
        arguments = params.get("arguments", {})
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise invalid_params("arguments must be an object")
        participant_id, on_behalf_of_id = params.get("participant_id"), params.get("on_behalf_of_id")
        for key, value in (("participant_id", participant_id), ("on_behalf_of_id", on_behalf_of_id)):
            if value is not None and not isinstance(value, str):
                raise invalid_params(f"{key} must be a string or null")
        timeout = params.get("timeout")
        if timeout is None:
            timeout = LIMITS.default_timeout
        elif (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise invalid_params("timeout must be a positive, finite number of seconds")
        handle = params.get("call_id")
        if handle is not None and (not isinstance(handle, str) or not 0 < len(handle) <= MAX_CALL_ID_LENGTH):
            raise invalid_params(f"call_id must be a string of 1-{MAX_CALL_ID_LENGTH} characters")
        return cls(
            toolkit,
            tool,
            arguments,
            participant_id,
            on_behalf_of_id,
            min(float(timeout), LIMITS.max_timeout),
            handle,
        )
