"""The Studio endpoint that starts a voice conversation (static/meshsite/studio-voice.js calls it)."""

import json

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_POST

from rooms.models import ROOM_NAME_RE
from studio.access import projects_for

from .actions import VoiceStartError, do_start_voice

MAX_BODY = 4096


@login_required
@require_POST
def start_voice(request: HttpRequest, project: str, room: str) -> JsonResponse:
    """POST {participant_id, thread_id?} → {url, token, room, identity, expires_in, dispatch_id}:
    where and how the page joins LiveKit; the VoiceBot is on its way there."""
    allowed = {p.slug: p for p in projects_for(request)}
    if project not in allowed or not ROOM_NAME_RE.match(room):
        return JsonResponse({"error": "no such project or room"}, status=404)
    if len(request.body) > MAX_BODY:
        return JsonResponse({"error": "request too large"}, status=413)
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"error": "the body must be JSON"}, status=400)
    if not isinstance(body, dict):
        return JsonResponse({"error": "the body must be a JSON object"}, status=400)
    username = request.user.get_username()
    try:
        session = do_start_voice(
            allowed[project],
            room,
            identity=f"studio-{username}",
            name=username,
            participant_id=body.get("participant_id"),
            thread_id=body.get("thread_id"),
        )
    except VoiceStartError as exc:
        return JsonResponse({"error": exc.message}, status=exc.status)
    response = JsonResponse(
        {
            "url": session.url,
            "token": session.person.token,
            "room": session.person.room,
            "identity": session.person.identity,
            "expires_in": session.person.ttl,
            "dispatch_id": session.dispatch_id,
            "thread_id": session.thread_id,
        }
    )
    add_never_cache_headers(response)  # it carries a live access token
    return response
