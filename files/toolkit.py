"""`storage`: the room's files: write (small files inline), read, list, stat, move, delete.

Grants: `storage.read` / `storage.write` fnmatch patterns over normalised paths (files.access),
checked on every tool, listing and stat included. Contents larger than
MESHSITE_STORAGE_INLINE_MAX_BYTES go over HTTP (`PUT`/`GET /api/v1/rooms/<room>/files/<path>`,
docs/storage.md). Changes are announced to the room's readers as `storage.changed`.
"""

import base64
import binascii
from typing import Any, cast

from asgiref.sync import sync_to_async
from django.conf import settings

from meshsite.errors import ErrorCode, MeshError, invalid_params
from rooms.events import run_action
from rooms.grants import Grants
from rooms.models import Room
from toolkits.base import BuiltinToolkit, CallContext, builtin_tool

from .access import check_list, check_read, check_write, may_read
from .actions import do_delete_file, do_move_file, do_write_file
from .models import StoredFile
from .paths import normalize_path, normalize_prefix
from .selectors import get_file, list_files, open_file

PATH = {"type": "string", "minLength": 1, "maxLength": 1024, "description": "Relative path, e.g. 'reports/q3.md'."}
CONTENT_TYPE = {"type": "string", "maxLength": 255, "description": "MIME type; guessed from the path if omitted."}
FILE = {
    "type": "object",
    "properties": {
        "path": {"type": "string"},
        "size": {"type": "integer"},
        "content_type": {"type": "string"},
        "sha256": {"type": "string"},
        "version": {"type": "integer"},
        "written_by": {"type": "string"},
        "created_at": {"type": "string"},
        "updated_at": {"type": "string"},
    },
    "required": ["path", "size", "content_type", "sha256", "version"],
}
FILE_OUTPUT = {"type": "object", "properties": {"file": FILE}, "required": ["file"]}


def grants_of(ctx: CallContext) -> Grants:
    return cast(Grants, ctx.caller.grants)


def room_of(ctx: CallContext) -> Room:
    return Room.objects.get(pk=ctx.caller.room_id)


def inline_limit() -> int:
    return int(settings.MESHSITE_STORAGE_INLINE_MAX_BYTES)


def too_large_inline(size: int) -> MeshError:
    return MeshError(
        ErrorCode.PAYLOAD_TOO_LARGE,
        f"{size} bytes is over the inline limit of {inline_limit()}; use HTTP "
        "(PUT/GET /api/v1/rooms/<room>/files/<path>) for large files",
        limit=inline_limit(),
    )


def decode_content(arguments: dict[str, Any]) -> bytes:
    has_text, has_base64 = "text" in arguments, "base64" in arguments
    if has_text == has_base64:
        raise invalid_params("give exactly one of 'text' and 'base64'")
    if has_text:
        content = str(arguments["text"]).encode()
    else:
        try:
            content = base64.b64decode(arguments["base64"], validate=True)
        except (binascii.Error, ValueError):
            raise invalid_params("'base64' is not valid base64") from None
    if len(content) > inline_limit():
        raise too_large_inline(len(content))
    return content


class StorageToolkit(BuiltinToolkit):
    name = "storage"
    description = "The room's files: write small files inline, read, list, stat, move and delete them."

    @builtin_tool(
        description="Create or replace a file with `text` (UTF-8) or `base64` contents (small files; "
        "larger ones go over HTTP). Last writer wins; the version increases on every write.",
        input_schema={
            "type": "object",
            "properties": {
                "path": PATH,
                "text": {"type": "string"},
                "base64": {"type": "string"},
                "content_type": CONTENT_TYPE,
            },
            "required": ["path"],
            "additionalProperties": False,
        },
        output_schema=FILE_OUTPUT,
    )
    async def write(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        path = normalize_path(arguments["path"])
        check_write(grants_of(ctx), path)
        content = decode_content(arguments)

        def write() -> StoredFile:
            return do_write_file(
                room=room_of(ctx),
                path=path,
                content=content,
                content_type=arguments.get("content_type"),
                written_by=ctx.caller.identity,
            )

        stored = await run_action(write)
        return {"file": stored.to_record()}

    @builtin_tool(
        description="Read a small file. `encoding`: 'text' (UTF-8), 'base64', or 'auto' (text when "
        "it is valid UTF-8, the default).",
        input_schema={
            "type": "object",
            "properties": {"path": PATH, "encoding": {"enum": ["auto", "text", "base64"]}},
            "required": ["path"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {"file": FILE, "encoding": {"enum": ["text", "base64"]}, "text": {}, "base64": {}},
            "required": ["file", "encoding"],
        },
    )
    async def read(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        path = normalize_path(arguments["path"])
        check_read(grants_of(ctx), path)
        encoding = arguments.get("encoding", "auto")

        def read() -> tuple[StoredFile, bytes]:
            stored = get_file(room_of(ctx), path)
            if stored.size > inline_limit():
                raise too_large_inline(stored.size)
            with open_file(stored) as opened:
                return stored, opened.read(inline_limit() + 1)

        stored, content = await sync_to_async(read)()
        result: dict[str, Any] = {"file": stored.to_record()}
        if encoding != "base64":
            try:
                result.update(encoding="text", text=content.decode())
                return result
            except UnicodeDecodeError:
                if encoding == "text":
                    raise invalid_params(f"{path!r} is not UTF-8 text; read it with encoding 'base64'") from None
        result.update(encoding="base64", base64=base64.b64encode(content).decode("ascii"))
        return result

    @builtin_tool(
        description="List the files you may read under `prefix` (default: the whole room), in path "
        "order, a page at a time; pass `next_cursor` back as `cursor` for the next page.",
        input_schema={
            "type": "object",
            "properties": {
                "prefix": {"type": "string", "maxLength": 1024},
                "limit": {"type": "integer", "minimum": 1, "maximum": 500},
                "cursor": {"type": "string", "maxLength": 1024},
            },
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {"files": {"type": "array", "items": FILE}, "next_cursor": {"type": ["string", "null"]}},
            "required": ["files", "next_cursor"],
        },
    )
    async def list(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        grants = grants_of(ctx)
        prefix = normalize_prefix(arguments.get("prefix", ""))
        check_list(grants, prefix)

        def page() -> dict[str, Any]:
            return list_files(
                room_of(ctx),
                prefix,
                limit=arguments.get("limit", 100),
                cursor=arguments.get("cursor"),
                readable=lambda path: may_read(grants, path),
            )

        return await sync_to_async(page)()

    @builtin_tool(
        description="A file's size, content type, sha256, version and who last wrote it.",
        input_schema={
            "type": "object",
            "properties": {"path": PATH},
            "required": ["path"],
            "additionalProperties": False,
        },
        output_schema=FILE_OUTPUT,
    )
    async def stat(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        path = normalize_path(arguments["path"])
        check_read(grants_of(ctx), path)
        stored = await sync_to_async(lambda: get_file(room_of(ctx), path))()
        return {"file": stored.to_record()}

    @builtin_tool(
        description="Move (rename) a file, replacing any file at `destination`. Needs write on both paths.",
        input_schema={
            "type": "object",
            "properties": {"source": PATH, "destination": PATH},
            "required": ["source", "destination"],
            "additionalProperties": False,
        },
        output_schema=FILE_OUTPUT,
    )
    async def move(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        source = normalize_path(arguments["source"], field="source")
        destination = normalize_path(arguments["destination"], field="destination")
        check_write(grants_of(ctx), source)
        check_write(grants_of(ctx), destination)

        def move() -> StoredFile:
            return do_move_file(room=room_of(ctx), source=source, destination=destination, moved_by=ctx.caller.identity)

        stored = await run_action(move)
        return {"file": stored.to_record()}

    @builtin_tool(
        description="Delete a file.",
        input_schema={
            "type": "object",
            "properties": {"path": PATH},
            "required": ["path"],
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": {"deleted": {"type": "string"}}, "required": ["deleted"]},
    )
    async def delete(self, ctx: CallContext, arguments: dict[str, Any]) -> Any:
        path = normalize_path(arguments["path"])
        check_write(grants_of(ctx), path)

        def delete() -> None:
            do_delete_file(room=room_of(ctx), path=path, deleted_by=ctx.caller.identity)

        await run_action(delete)
        return {"deleted": path}
