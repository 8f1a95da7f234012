"""HTTP upload and download for files of any size (up to MESHSITE_STORAGE_MAX_BYTES).

`PUT|GET|HEAD|DELETE /api/v1/rooms/<room>/files/<path>` and `GET /api/v1/rooms/<room>/files/`
(a listing), authorised by a participant token (`Authorization: Bearer <token>`) for that room,
with the same path grants as the `storage` toolkit. Bodies stream both ways: the upload is read
from the request in chunks into the storage backend, the download is an async iterator over the
blob, so neither is ever held whole in memory (docs/storage.md says where the server spools).
Errors are JSON `{"error": {"type", "message"}}` with 400/401/403/404/405/413.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any, TypeVar, cast
from urllib.parse import quote

from django.conf import settings
from django.db import close_old_connections, connections
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from meshsite.errors import ErrorCode, MeshError
from rooms.actions.rooms import RoomAccessError, access_room
from rooms.api.auth import api_error
from rooms.events import collect_room_events, send_room_event
from rooms.models import Room
from rooms.tokens import TokenClaims, TokenError, verify_token

from .access import check_list, check_read, check_write, may_read
from .actions import do_delete_file, do_write_file
from .blobs import CHUNK_BYTES
from .models import StoredFile
from .paths import normalize_path, normalize_prefix
from .ranges import Unsatisfiable, requested_range
from .selectors import get_file, list_files, open_file

T = TypeVar("T")
# Uploads and downloads do blocking file and database work for as long as the transfer lasts:
# on their own threads, so they never hold up Django's one shared thread for sync views.
_transfers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="files-transfer")
HTTP_STATUS = {
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.INVALID_ARGUMENTS: 400,
    ErrorCode.INVALID_PARAMS: 400,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.CONFLICT: 409,
}


class HttpFailure(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


def _in_transfer_thread(func: Callable[[], T]) -> tuple[T, list[dict[str, Any]]]:
    close_old_connections()
    try:
        with collect_room_events() as events:
            return func(), events
    finally:
        connections.close_all()  # this thread's; the pool's threads outlive requests


async def off_loop(func: Callable[[], T]) -> T:
    """Runs a blocking action on a transfer thread, then sends the room events it committed from
    the event loop (as rooms.events.run_action does: the channel layer belongs to the loop)."""
    result, events = await asyncio.get_running_loop().run_in_executor(_transfers, _in_transfer_thread, func)
    for event in events:
        await send_room_event(event["room_id"], event["method"], event["params"], **event["internal"])
    return result


def authorise(request: HttpRequest, room_name: str) -> tuple[TokenClaims, Room]:
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise HttpFailure(401, "unauthorized", "send a participant token as 'Authorization: Bearer <token>'")
    try:
        claims = verify_token(raw.strip())
    except TokenError as exc:
        raise HttpFailure(401, "unauthorized", str(exc)) from None
    try:
        room = access_room(claims, room_name)
    except RoomAccessError as exc:
        raise HttpFailure(403, "permission_denied", str(exc)) from None
    return claims, room


def mesh_failure(error: MeshError) -> JsonResponse:
    return api_error(HTTP_STATUS.get(error.code, 400), error.code.type_name, error.message)


Handler = Callable[[HttpRequest, str, str], Awaitable[HttpResponseBase]]


@csrf_exempt
async def file_endpoint(request: HttpRequest, room: str, path: str = "") -> HttpResponseBase:
    handlers: dict[str, Handler] = {"GET": download, "HEAD": download, "PUT": upload, "DELETE": delete}
    handler: Handler
    if path == "" and request.method in ("GET", "HEAD"):
        handler = listing
    elif request.method in handlers:
        handler = handlers[request.method]
    else:
        response = api_error(405, "method_not_allowed", f"{request.method} is not supported here")
        response["Allow"] = "GET, HEAD, PUT, DELETE"
        return response
    try:
        return await handler(request, room, path)
    except HttpFailure as failure:
        return api_error(failure.status, failure.error_type, failure.message)
    except MeshError as error:
        return mesh_failure(error)


async def upload(request: HttpRequest, room_name: str, path: str) -> HttpResponse:
    declared = request.headers.get("Content-Length")
    limit = settings.MESHSITE_STORAGE_MAX_BYTES
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return api_error(413, "payload_too_large", f"{declared} bytes is over the limit of {limit} bytes per file")

    def write() -> StoredFile:
        claims, room = authorise(request, room_name)
        normalized = normalize_path(path)
        check_write(claims.grants, normalized)
        stored = do_write_file(
            room=room,
            path=normalized,
            content=cast(IO[bytes], request),  # HttpRequest.read(n): the body in chunks, never whole
            content_type=request.headers.get("Content-Type"),
            written_by=claims.identity,
        )
        return stored

    stored = await off_loop(write)
    return JsonResponse({"file": stored.to_record()}, status=200 if stored.version > 1 else 201)


async def delete(request: HttpRequest, room_name: str, path: str) -> HttpResponse:
    def remove() -> None:
        claims, room = authorise(request, room_name)
        normalized = normalize_path(path)
        check_write(claims.grants, normalized)
        do_delete_file(room=room, path=normalized, deleted_by=claims.identity)

    await off_loop(remove)
    return HttpResponse(status=204)


async def listing(request: HttpRequest, room_name: str, _path: str) -> HttpResponse:
    limit_raw = request.GET.get("limit", "100")
    if not limit_raw.isdigit() or not 1 <= int(limit_raw) <= 500:
        raise HttpFailure(400, "invalid_request", "'limit' must be an integer from 1 to 500")

    def page() -> dict[str, Any]:
        claims, room = authorise(request, room_name)
        prefix = normalize_prefix(request.GET.get("prefix", ""))
        check_list(claims.grants, prefix)
        return list_files(
            room,
            prefix,
            limit=int(limit_raw),
            cursor=request.GET.get("cursor"),
            readable=lambda p: may_read(claims.grants, p),
        )

    return JsonResponse(await off_loop(page))


async def download(request: HttpRequest, room_name: str, path: str) -> HttpResponseBase:
    def find() -> tuple[StoredFile, IO[bytes] | None]:
        claims, room = authorise(request, room_name)
        normalized = normalize_path(path)
        check_read(claims.grants, normalized)
        stored = get_file(room, normalized)
        return stored, (None if request.method == "HEAD" else open_file(stored))

    stored, opened = await off_loop(find)
    try:
        span = requested_range(request.headers.get("Range"), stored.size)
    except Unsatisfiable:
        if opened is not None:
            opened.close()
        refusal = api_error(416, "range_not_satisfiable", f"the file has {stored.size} bytes")
        refusal["Content-Range"] = f"bytes */{stored.size}"
        return refusal
    first, last = span if span is not None else (0, stored.size - 1)
    length = last - first + 1
    response: HttpResponseBase
    if opened is None:
        response = HttpResponse()
    else:
        response = StreamingHttpResponse(stream(opened, first, length), status=206 if span else 200)
    if span is not None:
        response["Content-Range"] = f"bytes {first}-{last}/{stored.size}"
    response["Content-Type"] = stored.content_type
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = f'"{stored.sha256}"'
    response["X-Meshsite-Version"] = str(stored.version)
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(stored.path.rsplit('/', 1)[-1])}"
    response["X-Content-Type-Options"] = "nosniff"
    return response


async def stream(opened: IO[bytes], offset: int, length: int) -> AsyncIterator[bytes]:
    """`length` bytes of the blob from `offset`, in chunks read off the event loop: Django's ASGI
    handler would read a sync iterator whole into memory before sending it
    (StreamingHttpResponse.__aiter__)."""
    loop = asyncio.get_running_loop()
    try:
        if offset:
            await loop.run_in_executor(_transfers, opened.seek, offset)
        while length > 0:
            chunk = await loop.run_in_executor(_transfers, opened.read, min(CHUNK_BYTES, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        opened.close()
