"""Inbound webhooks (docs/mail.md "Receiving mail"):

- `POST /mail/inbound/mailgun/`: Mailgun's route forward, through anymail's view (its signature
  checked with MAILGUN_WEBHOOK_SIGNING_KEY, plus ANYMAIL_WEBHOOK_SECRET basic auth when set);
- `POST /mail/inbound/postmark/`: Postmark's inbound webhook, through anymail's view (basic auth
  with ANYMAIL_WEBHOOK_SECRET, required);
- `POST /mail/inbound/raw/`: a raw RFC 822 message as the body, with a project API key
  (`Authorization: Bearer msk_…`); `?to=` names the recipient when the headers do not.

Anymail's views parse and authenticate, then send `anymail.signals.inbound`; our receiver stores
the message (`do_receive_mail`). Answers: 200 with what happened, 401/403 for bad credentials,
404 when no mailbox takes the message, 413 when it is too large (nothing stored).
"""

from collections.abc import Callable
from typing import Any

from anymail.exceptions import (  # type: ignore[import-untyped]
    AnymailConfigurationError,
    AnymailWebhookValidationFailure,
)
from anymail.webhooks.mailgun import MailgunInboundWebhookView  # type: ignore[import-untyped]
from anymail.webhooks.postmark import PostmarkInboundWebhookView  # type: ignore[import-untyped]
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from meshsite.celery import app
from rooms.actions.projects import access_api_key

from .actions import MailRefused, Received, do_receive_mail
from .parsing import normalise, parse_raw
from .requests import attach_form_data, read_limited
from .signals import collect_received
from .sweep import ensure_sweeper

# An ESP's request carries the message plus its encoding (base64 attachments in JSON: 4/3).
ESP_OVERHEAD = 2


def error(status: int, code: str, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": {"type": code, "message": message}}, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


def received_answer(received: list[Received]) -> JsonResponse:
    if app.conf.task_always_eager and settings.MESHSITE_MAIL_SWEEP_IN_PROCESS:
        ensure_sweeper()  # the embedded default: this process does the background work
    return JsonResponse(
        {
            "messages": [
                {
                    "id": r.inbound.pk,
                    "message_id": r.inbound.message_key,
                    "status": r.inbound.status,
                    "reason": r.inbound.reason or None,
                    "duplicate": not r.created,
                    "room": r.inbound.room.name,
                    "thread_id": r.inbound.thread_id,
                }
                for r in received
            ]
        }
    )


def _too_large(limit: int) -> JsonResponse:
    return error(
        413,
        "too_large",
        f"the request is over {limit} bytes; the largest message accepted is {settings.MESHSITE_MAIL_MAX_BYTES} bytes",
    )


def esp_view(view_class: type, esp: str) -> Callable[[HttpRequest], HttpResponse]:
    """Anymail's inbound view for `esp`, with our limits and clear 4xx answers around it."""

    @csrf_exempt
    @require_http_methods(["POST", "HEAD"])
    def view(request: HttpRequest) -> HttpResponse:
        if request.method == "HEAD":  # some ESPs check the URL with HEAD when it is configured
            return HttpResponse()
        limit = settings.MESHSITE_MAIL_MAX_BYTES * ESP_OVERHEAD
        body = read_limited(request, limit)
        if body is None:
            return _too_large(limit)
        if not attach_form_data(request, body):
            return error(400, "invalid_form", "the request body is not valid form data")
        if settings.ANYMAIL.get("WEBHOOK_SECRET") and "Authorization" not in request.headers:
            return error(
                401,
                "unauthorized",
                "send the webhook's basic auth (ANYMAIL_WEBHOOK_SECRET)",
                **{"WWW-Authenticate": 'Basic realm="meshsite mail"'},
            )
        try:
            anymail_view = view_class()
        except AnymailConfigurationError as exc:
            return error(503, "not_configured", f"{esp} inbound mail is not configured here: {exc}")
        # What anymail's own `post` does, step by step, so each failure gets its own answer.
        try:
            anymail_view.run_validators(request)
        except AnymailWebhookValidationFailure as exc:
            return error(403, "forbidden", str(exc))
        try:
            events = anymail_view.parse_events(request)
        except AnymailConfigurationError as exc:
            return error(400, "wrong_webhook", str(exc))
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            return error(400, "invalid_payload", f"not a {esp} inbound payload: {type(exc).__name__}: {exc}")
        try:
            with collect_received() as received:
                for event in events:
                    anymail_view.signal.send(sender=view_class, event=event, esp_name=anymail_view.esp_name)
        except MailRefused as exc:
            return error(exc.status, exc.code, exc.message)
        return received_answer(received)

    return view


def _anymail_view_for_postmark() -> type:
    """Postmark has no signature: basic auth is its only protection, so it is required."""

    class Postmark(PostmarkInboundWebhookView):
        def __init__(self, **kwargs: Any) -> None:
            if not settings.ANYMAIL.get("WEBHOOK_SECRET"):
                raise AnymailConfigurationError("set ANYMAIL_WEBHOOK_SECRET (basic auth for Postmark's webhook)")
            super().__init__(**kwargs)

    return Postmark


mailgun_inbound = esp_view(MailgunInboundWebhookView, "mailgun")
postmark_inbound = esp_view(_anymail_view_for_postmark(), "postmark")


@csrf_exempt
@require_POST
def raw_inbound(request: HttpRequest) -> HttpResponse:
    scheme, _, raw_key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw_key.strip():
        return error(
            401,
            "unauthorized",
            "send a project API key as 'Authorization: Bearer msk_…'",
            **{"WWW-Authenticate": "Bearer"},
        )
    key = access_api_key(raw_key.strip())
    if key is None:
        return error(401, "unauthorized", "unknown or revoked API key", **{"WWW-Authenticate": "Bearer"})
    limit = settings.MESHSITE_MAIL_MAX_BYTES
    body = read_limited(request, limit)
    if body is None:
        return error(413, "too_large", f"the message is over {limit} bytes (MESHSITE_MAIL_MAX_BYTES)")
    if not body.strip():
        return error(400, "empty", "the body must be the raw message (RFC 822), e.g. curl --data-binary @mail.eml")
    mail = normalise(parse_raw(body), raw=body)
    to = request.GET.get("to", "").strip().lower()
    if to:
        mail.recipients.insert(0, to)
    try:
        received = do_receive_mail(mail, esp="raw", project_id=key.project_id)
    except MailRefused as exc:
        return error(exc.status, exc.code, exc.message)
    return received_answer([received])
