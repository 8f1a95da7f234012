"""The proxy served through Django's URLs (`/v1/…` in `meshsite/urls.py`): Django's request in,
`core.handle`, Django's response out. A client that leaves cancels the view (before the answer)
or closes the stream's iterator (while streaming): Django's ASGI handler does both.

`observability.proxy.asgi` serves the same ahead of Django's middleware, for less overhead."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from .core import Incoming, Outgoing, error_answer, handle, new_request_id, too_large


def to_django(outgoing: Outgoing) -> HttpResponseBase:
    response: HttpResponseBase
    if outgoing.stream is not None:
        response = StreamingHttpResponse(outgoing.stream, status=outgoing.status)
    else:
        response = HttpResponse(outgoing.body, status=outgoing.status)
    for name, value in outgoing.headers.items():
        response[name] = value
    return response


@csrf_exempt
async def proxy(request: HttpRequest, route: str) -> HttpResponseBase:
    limit = settings.MESHSITE_PROXY_MAX_REQUEST_BYTES
    body = request.read(limit + 1)
    if len(body) > limit:
        return to_django(error_answer(too_large(), new_request_id()))
    headers = {name.lower(): value for name, value in request.headers.items()}
    return to_django(await handle(route, Incoming(str(request.method), headers, body)))
