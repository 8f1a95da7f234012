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
from rooms.models import Project
from rooms.tokens import mint_token

ROOM_COMMANDS = ("participants", "toolkits", "invoke", "send", "listen")


class Command(BaseCommand):
    help = "Mint tokens, manage projects and API keys, and work in a room from the terminal."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        token = sub.add_parser("token", help="Print a participant token.")
        self._room_arguments(token)
        token.add_argument("--ttl", type=int, default=None, help="Seconds until it expires.")
        token.add_argument("--grants", default=None, help="JSON object overriding the role's grants.")
        token.add_argument("--name", default="", help="Display name.")

        project = sub.add_parser("create-project", help="Create a project.")
        project.add_argument("slug")
        project.add_argument("--name", default="")

        key = sub.add_parser("create-api-key", help="Create a project API key and print it (shown once).")
        key.add_argument("--project", required=True)
        key.add_argument("--name", default="cli")

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
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        return token

    def _room_command(self, action: str, options: dict[str, Any]) -> None:
        from meshsite_client.cli import main as client_main

        base = options["url"] or settings.MESHSITE_PUBLIC_URL or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
        ws = base.replace("https://", "wss://").replace("http://", "ws://").rstrip("/")
        token = self._token(options, ttl=300)
        code = client_main(["--url", f"{ws}/rooms/{options['room']}/ws", "--token", token, action, *options["rest"]])
        if code:
            raise SystemExit(code)
