"""The REST API (`/api/v1/…`): JSON in, JSON out, errors as 4xx with a reason."""

import json
from typing import Any

from django.conf import settings
from django.core.paginator import EmptyPage, Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from rooms.timestamps import iso_z

from ..models import Project, Room
from ..tokens import mint_token
from .auth import api_error, project_api_key_required

PAGE_SIZE = 50


def ws_url(request: HttpRequest, room: str) -> str:
    base = settings.MESHSITE_PUBLIC_URL or f"{request.scheme}://{request.get_host()}"
    return base.replace("https://", "wss://").replace("http://", "ws://").rstrip("/") + f"/rooms/{room}/ws"


@csrf_exempt
@require_POST
@project_api_key_required
def create_token(request: HttpRequest, project: Project) -> JsonResponse:
    try:
        body: Any = json.loads(request.body or b"{}")
    except ValueError:
        return api_error(400, "invalid_json", "the request body is not valid JSON")
    if not isinstance(body, dict):
        return api_error(400, "invalid_request", "the request body must be a JSON object")
    room, identity = body.get("room"), body.get("identity")
    if not isinstance(room, str) or not isinstance(identity, str):
        return api_error(400, "invalid_request", "'room' and 'identity' are required strings")
    ttl = body.get("ttl")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int)):
        return api_error(400, "invalid_request", "'ttl' must be an integer number of seconds")
    grants = body.get("grants")
    attributes = body.get("attributes")
    if grants is not None and not isinstance(grants, dict):
        return api_error(400, "invalid_request", "'grants' must be an object")
    if attributes is not None and not isinstance(attributes, dict):
        return api_error(400, "invalid_request", "'attributes' must be an object")
    name = body.get("name", "")
    agent = body.get("agent", "")
    if not isinstance(agent, str):
        return api_error(400, "invalid_request", "'agent' must be a string (the agent this token runs)")
    singleton = body.get("singleton")
    if singleton is not None and not isinstance(singleton, bool):
        return api_error(400, "invalid_request", "'singleton' must be true or false")
    try:
        token, expires = mint_token(
            project=project.slug,
            room=room,
            identity=identity,
            role=str(body.get("role", "user")),
            name=name if isinstance(name, str) else "",
            ttl=ttl,
            grants=grants,
            attributes=attributes,
            agent=agent,
            singleton=singleton,
        )
    except ValueError as exc:
        return api_error(400, "invalid_request", str(exc))
    return JsonResponse(
        {
            "token": token,
            "expires_at": iso_z(expires),
            "project": project.slug,
            "room": room,
            "ws_url": ws_url(request, room),
        },
        status=201,
    )


@require_GET
@project_api_key_required
def list_rooms(request: HttpRequest, project: Project) -> JsonResponse:
    rooms = (
        Room.objects.for_project(project)
        .annotate(present=Count("participants", filter=Q(participants__left_at__isnull=True)))
        .order_by("name")
    )
    paginator = Paginator(rooms, PAGE_SIZE)
    try:
        page = paginator.page(request.GET.get("page", 1))
    except (EmptyPage, ValueError):
        return api_error(404, "not_found", "no such page")
    return JsonResponse(
        {
            "rooms": [
                {"name": r.name, "participants": getattr(r, "present", 0), "created_at": r.created_at.isoformat()}
                for r in page
            ],
            "page": page.number,
            "pages": paginator.num_pages,
        }
    )


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})
