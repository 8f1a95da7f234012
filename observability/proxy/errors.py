"""Errors the proxy itself answers, in OpenAI's error shape so every OpenAI client reports them:
`{"error": {"message", "type", "param", "code", …}}`."""

from typing import Any

from django.http import JsonResponse

# OpenAI's clients retry 408, 409, 429 and 5xx unless the answer says not to; a refusal the
# same request would meet again (a spent budget) says so.
NO_RETRY = {"x-should-retry": "false"}


class ProxyError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {
            "error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code, **self.extra}
        }

    def response(self, request_id: str) -> JsonResponse:
        response = JsonResponse(self.body(), status=self.status)
        for name, value in self.headers.items():
            response[name] = value
        response["x-request-id"] = request_id
        return response


def unauthorized(message: str) -> ProxyError:
    return ProxyError(401, message, type="invalid_request_error", code="invalid_api_key")


def forbidden(message: str) -> ProxyError:
    return ProxyError(403, message, type="permission_denied", code="permission_denied", headers=NO_RETRY)


def bad_request(message: str, param: str | None = None) -> ProxyError:
    return ProxyError(400, message, type="invalid_request_error", code="invalid_request", param=param)
