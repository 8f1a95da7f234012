"""The metering proxy: an OpenAI-compatible endpoint (`/v1/chat/completions`, `/v1/embeddings`,
`/v1/models`) that meters whatever passes through it (docs/billing.md, "Metering proxy").

Any framework's agent is metered by pointing its OpenAI base URL here, with a participant token
or a project API key as its API key. Per request:

1. authenticate (`auth`): the credential names the project (and, for a token, the room, identity
   and vouched agent) the usage is charged to;
2. when a budget applies, reserve the request's estimated cost (`metering.gate`): over a hard
   budget the answer is 429 `budget_exceeded` and the upstream never sees the request;
3. forward to the project's upstream (`upstream`, `core.forward`) and pass its answer back: a
   stream event by event as it arrives (`core.Relay`), an error with its status and body;
4. record the usage at its price (`observability.usage.record_usage`), settling the reservation,
   off the response's path (`metering.submit`); a stream cut short (the client left, the upstream
   broke) is recorded with the tokens estimated from what was streamed, flagged in `metadata`.

Database work runs on the proxy's own threads with persistent connections (`metering.run_db`),
not on a new thread and connection per request. `core` is framework-free; `views` serves it
through Django's URLs, `asgi.mount` straight from the ASGI server (`server.application`), and
`daphne` from `manage.py serve`'s daphne itself when the application mounts it.
"""
