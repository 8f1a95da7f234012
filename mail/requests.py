"""Reading a webhook's body within our own limit, before anymail parses it.

Django refuses form fields over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), and Mailgun sends the whole
raw message as one field: the body is read here (up to the mail limit) and parsed with the
standard library's MIME parser, then handed to anymail as `request.POST`/`request.FILES`."""

from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP

from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpRequest, QueryDict
from django.utils.datastructures import MultiValueDict


def read_limited(request: HttpRequest, limit: int) -> bytes | None:
    """The body, or None when it is over `limit` bytes (by its Content-Length or as read)."""
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return None
    body = request.read(limit + 1)
    if len(body) > limit:
        return None
    request._body = body  # what request.body returns from now on
    return body


def _form_data(content_type: str, body: bytes) -> tuple[QueryDict, MultiValueDict[str, SimpleUploadedFile]] | None:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    message: Message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return None
    post = QueryDict(mutable=True)
    files: MultiValueDict[str, SimpleUploadedFile] = MultiValueDict()
    for part in message.get_payload():
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files.appendlist(name, SimpleUploadedFile(filename, data, part.get_content_type()))
        else:
            post.appendlist(name, data.decode(part.get_content_charset() or "utf-8", "replace"))
    return post, files


def attach_form_data(request: HttpRequest, body: bytes) -> bool:
    """Parses a multipart/form-data or urlencoded body into request.POST/FILES (False: it claims
    to be multipart and is not). Other bodies (JSON) are left for the view to read."""
    content_type = request.headers.get("Content-Type", "")
    if content_type.startswith("multipart/form-data"):
        parsed = _form_data(content_type, body)
        if parsed is None:
            return False
        request._post, request._files = parsed  # type: ignore[attr-defined]
    elif content_type.startswith("application/x-www-form-urlencoded"):
        request._post = QueryDict(body, encoding="utf-8")  # type: ignore[attr-defined]
        request._files = MultiValueDict()  # type: ignore[attr-defined]
    return True
