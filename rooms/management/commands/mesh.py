"""`manage.py mesh …`: tokens, projects and API keys on the server, and room commands for a terminal.

`mesh token` prints a participant token and nothing else. The room commands (participants,
toolkits, invoke, send, listen) mint a short-lived token for `--identity` and run the client CLI
(`meshsite_client.cli`) against the running server at `--url`.
"""

import json
import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rooms.actions.projects import do_create_api_key, do_create_project
from rooms.actions.rooms import do_create_room
from rooms.models import ROOM_NAME_RE, Project, room_name_validator
from rooms.tokens import mint_token

ROOM_COMMANDS = ("participants", "toolkits", "invoke", "send", "listen")


def default_server_url() -> str:
    """Where `manage.py serve` listens when started from this environment (`make run PORT=…`)."""
    return settings.MESHSITE_PUBLIC_URL or f"http://127.0.0.1:{os.environ.get('PORT') or '8000'}"


def room_ws_url(server_url: str, room: str) -> str:
    """`http(s)://host:port[/prefix]` (or a bare `host:port`) → the room's WebSocket URL."""
    scheme, sep, rest = server_url.strip().rstrip("/").partition("://")
    if not sep:
        scheme, rest = "http", scheme
    ws_scheme = {"https": "wss", "http": "ws"}.get(scheme.lower(), scheme)
    return f"{ws_scheme}://{rest}/rooms/{room}/ws"


def _project(options: dict[str, Any]) -> Project:
    project = Project.objects.filter(slug=options["project"]).first()
    if project is None:
        raise CommandError(f"no project {options['project']!r}")
    return project


def list_services(options: dict[str, Any]) -> Any:
    from django.db.models import Count, Q

    from agents.models import Dispatch, Service

    rows = (
        Service.objects.filter(project=_project(options))
        .select_related("room")
        .annotate(running=Count("dispatches", filter=Q(dispatches__status=Dispatch.Status.RUNNING)))
    )
    return [
        {**s.to_record(), "room": s.room.name if s.room else None, "enabled": s.enabled, "running": s.running}
        for s in rows
    ]


def create_service(options: dict[str, Any]) -> Any:
    from django.core.exceptions import ValidationError

    from agents.actions import do_create_service
    from agents.introspection import ServiceClassError
    from agents.models import Service

    project = _project(options)
    room = None
    if options["room"]:
        if not ROOM_NAME_RE.match(options["room"]):
            raise CommandError(room_name_validator.message)
        room = project.rooms.filter(name=options["room"]).first() or do_create_room(project, options["room"])
    try:
        config = json.loads(options["config"])
    except ValueError as exc:
        raise CommandError(f"--config is not valid JSON: {exc}") from None
    kind = Service.Kind.WEBHOOK if options["url"] else Service.Kind.PYTHON
    if kind == Service.Kind.PYTHON and not options["class_path"]:
        raise CommandError("give --class-path (a Python service) or --url and --secret (a webhook service)")
    if kind == Service.Kind.WEBHOOK and not options["secret"]:
        raise CommandError("a webhook service needs --secret")
    try:
        service = do_create_service(
            project,
            options["name"],
            room=room,
            kind=kind,
            class_path=options["class_path"],
            config=config,
            url=options["url"],
            secret=options["secret"],
            allow_multiple=options["allow_multiple"],
        )
    except ServiceClassError as exc:
        raise CommandError(str(exc)) from None
    except ValidationError as exc:
        raise CommandError("; ".join(exc.messages)) from None
    return service.to_record()


def toggle_service(options: dict[str, Any]) -> Any:
    from agents.actions import do_set_service_enabled
    from agents.models import Service

    enabled = options["action"] == "enable-service"
    service = Service.objects.filter(project=_project(options), name=options["name"]).first()
    if service is None:
        raise CommandError(f"no service {options['name']!r} in project {options['project']!r}")
    stopped = do_set_service_enabled(service, enabled)
    return {"name": service.name, "enabled": enabled, **({} if enabled else {"stopped": stopped})}


def stop_agent(options: dict[str, Any]) -> Any:
    """Stops running instances of services: one dispatch by id, or the agent `--identity` in `--room`."""
    from agents.actions import do_stop_dispatch
    from agents.models import Dispatch

    dispatches = Dispatch.objects.filter(room__project=_project(options)).unfinished()
    if options["dispatch"] is not None:
        dispatches = dispatches.filter(id=options["dispatch"])
        missing = f"no running agent with dispatch id {options['dispatch']}"
    elif options["room"] and options["identity"]:
        dispatches = dispatches.filter(room__name=options["room"], identity=options["identity"])
        missing = f"no running agent {options['identity']!r} in room {options['room']!r}"
    else:
        raise CommandError("give --room and --identity, or --dispatch")
    ids = list(dispatches.values_list("id", flat=True))
    stopped = [pk for pk in ids if do_stop_dispatch(pk, "stopped with manage.py mesh stop-agent")]
    if not stopped:
        raise CommandError(missing)
    return [d.to_record() for d in Dispatch.objects.filter(id__in=stopped).select_related("service")]


SERVICE_COMMANDS = {
    "services": list_services,
    "create-service": create_service,
    "enable-service": toggle_service,
    "disable-service": toggle_service,
    "stop-agent": stop_agent,
}


class Command(BaseCommand):
    help = "Mint tokens, manage projects and API keys, and work in a room from the terminal."
    # a terminal tool: the server's system checks (`manage.py check`, `serve`) would only clutter
    # what it prints, which scripts read
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        token = sub.add_parser("token", help="Print a participant token.")
        self._room_arguments(token)
        token.add_argument("--ttl", type=int, default=None, help="Seconds until it expires.")
        token.add_argument("--grants", default=None, help="JSON object overriding the role's grants.")
        token.add_argument("--name", default="", help="Display name.")
        token.add_argument(
            "--agent", default="", help="Vouch that this token runs the named agent (needs --role agent)."
        )
        token.add_argument(
            "--singleton",
            action="store_true",
            default=None,
            help="A newer connection of this identity replaces the older one (the default for --agent).",
        )

        project = sub.add_parser("create-project", help="Create a project.")
        project.add_argument("slug")
        project.add_argument("--name", default="")

        key = sub.add_parser("create-api-key", help="Create a project API key and print it (shown once).")
        key.add_argument("--project", required=True)
        key.add_argument("--name", default="cli")

        services = sub.add_parser("services", help="List a project's services (deployments) and their status.")
        services.add_argument("--project", required=True)

        service = sub.add_parser("create-service", help="Register a service (a deployable agent).")
        service.add_argument("--project", required=True)
        service.add_argument("--name", required=True, help="The agent's name (a slug).")
        service.add_argument("--room", default=None, help="Only this room (default: every room of the project).")
        service.add_argument(
            "--class-path", default="", help="Python service: the agent class, e.g. agents.demo.WordCounter"
        )
        service.add_argument("--config", default="{}", help="Python service: JSON keyword arguments for the class.")
        service.add_argument("--url", default="", help="Webhook service: where the signed invitation is POSTed.")
        service.add_argument("--secret", default="", help="Webhook service: the signing secret.")
        service.add_argument("--allow-multiple", action="store_true")

        for toggle, text in (
            ("enable-service", "Enable a service."),
            ("disable-service", "Disable a service and stop its running agents."),
        ):
            command = sub.add_parser(toggle, help=text)
            command.add_argument("--project", required=True)
            command.add_argument("--name", required=True)

        stop = sub.add_parser(
            "stop-agent", help="Stop a running agent (a service's instance): it finishes its asks and leaves."
        )
        stop.add_argument("--project", required=True)
        stop.add_argument("--room", default=None)
        stop.add_argument("--identity", default=None, help="The agent's identity in --room.")
        stop.add_argument("--dispatch", type=int, default=None, help="Or: the dispatch id (see `agents.call`).")

        for name in ROOM_COMMANDS:
            command = sub.add_parser(name, help=f"Room command: {name} (see `meshsite {name} --help`).")
            self._room_arguments(command, identity_default="cli")
            command.add_argument(
                "--url", default=None, help="Server URL (default MESHSITE_PUBLIC_URL or http://127.0.0.1:$PORT)."
            )
            command.add_argument("rest", nargs="*", help="Arguments for the client CLI command.")

    @staticmethod
    def _room_arguments(parser: CommandParser, identity_default: str | None = None) -> None:
        parser.add_argument("--project", required=True)
        parser.add_argument("--room", required=True)
        parser.add_argument("--identity", required=identity_default is None, default=identity_default)
        parser.add_argument("--role", default="user", choices=["user", "agent", "service"])

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "token":
            self.stdout.write(self._token(options, ttl=options["ttl"]))
        elif action == "create-project":
            if Project.objects.filter(slug=options["slug"]).exists():
                raise CommandError(f"project {options['slug']!r} already exists")
            do_create_project(options["slug"], options["name"])
            self.stdout.write(options["slug"])
        elif action == "create-api-key":
            project = Project.objects.filter(slug=options["project"]).first()
            if project is None:
                raise CommandError(f"no project {options['project']!r}")
            _key, raw = do_create_api_key(project, options["name"])
            self.stdout.write(raw)
        elif action in SERVICE_COMMANDS:
            self.stdout.write(json.dumps(SERVICE_COMMANDS[action](options), indent=2))
        else:
            self._room_command(action, options)

    def _token(self, options: dict[str, Any], ttl: int | None) -> str:
        if not Project.objects.filter(slug=options["project"]).exists():
            raise CommandError(f"no project {options['project']!r}")
        grants = None
        if options.get("grants"):
            try:
                grants = json.loads(options["grants"])
            except ValueError as exc:
                raise CommandError(f"--grants is not valid JSON: {exc}") from None
        try:
            token, _expires = mint_token(
                project=options["project"],
                room=options["room"],
                identity=options["identity"],
                role=options["role"],
                name=options.get("name") or "",
                ttl=ttl,
                grants=grants,
                agent=options.get("agent") or "",
                singleton=options.get("singleton"),
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        return token

    def _room_command(self, action: str, options: dict[str, Any]) -> None:
        from meshsite_client.cli import main as client_main

        ws = room_ws_url(options["url"] or default_server_url(), options["room"])
        token = self._token(options, ttl=300)
        code = client_main(["--url", ws, "--token", token, action, *options["rest"]])
        if code:
            raise SystemExit(code)
