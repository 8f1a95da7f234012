"""Creates the demo project, room, admin user and API key (idempotent) and prints how to use them."""

import json
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from agents.actions import do_create_service
from agents.models import Service
from rooms.actions.projects import do_create_api_key, do_create_project
from rooms.models import Membership, Project, Room


class Command(BaseCommand):
    help = "Create demo data for the embedded default: project 'demo', room 'lobby', user 'admin', an API key."

    def handle(self, *args: Any, **options: Any) -> None:
        credentials_file = settings.VAR_DIR / "demo-credentials.json"
        credentials: dict[str, str] = {}
        if credentials_file.exists():
            credentials = json.loads(credentials_file.read_text())
        User = get_user_model()
        admin = User.objects.filter(username="admin").first()
        if admin is None:
            password = secrets.token_urlsafe(9)
            admin = User.objects.create_superuser("admin", "admin@example.com", password)
            credentials["admin_password"] = password
        project = Project.objects.filter(slug="demo").first()
        if project is None:
            project = do_create_project("demo", "Demo project", owner=admin)
        Membership.objects.get_or_create(project=project, user=admin, defaults={"role": Membership.Role.OWNER})
        lobby, _created = Room.objects.get_or_create(project=project, name="lobby")
        if not Service.objects.filter(project=project, name="word-counter").exists():
            do_create_service(project, "word-counter", class_path="agents.demo.WordCounter")
        if not Service.objects.filter(project=project, name="assistant").exists():
            # always on in the lobby: the agent host starts it and keeps it there
            do_create_service(project, "assistant", class_path="agents.demo.Assistant", room=lobby, always_on=True)
        from mail.demo import ensure_mail_demo

        mailbox = ensure_mail_demo(project)  # the MailWorker answering assistant@meshsite.localhost
        if not Service.objects.filter(project=project, name="word-stats").exists():
            # a background Worker on the lobby's `jobs` queue (on Celery; in-process on the embedded default)
            do_create_service(
                project, "word-stats", class_path="agents.demo.WordStats", room=lobby, config={"queue": "jobs"}
            )
        if (
            "api_key" not in credentials
            or not project.api_keys.active().filter(prefix=credentials["api_key"][:10]).exists()
        ):
            _key, raw = do_create_api_key(project, "demo")
            credentials["api_key"] = raw
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        credentials_file.write_text(json.dumps(credentials, indent=2))
        credentials_file.chmod(0o600)
        self.stdout.write(
            "Demo ready: project 'demo', room 'lobby'.\n"
            f"  admin login: admin / {credentials.get('admin_password', '(set earlier)')}\n"
            f"  API key:     {credentials['api_key']}\n"
            f"  (kept in {credentials_file})\n"
            '  demo agents: word-counter (agents.call {"name": "word-counter"}, then agents.ask)\n'
            "               assistant, a ChatBot in the lobby's threads (set OPENAI_API_KEY, or OPENAI_BASE_URL\n"
            "               and OPENAI_MODEL for a local server, before `make run`)\n"
            '               word-stats, a Worker on the lobby\'s queue "jobs": queues.send {"queue": "jobs",\n'
            '               "body": "some text"} and it announces the count (messaging, type word-stats)\n'
            f"               mail-assistant, a MailWorker answering {mailbox.address} in room "
            f"'{mailbox.room.name}' (docs/mail.md: `manage.py mailsink`, then curl a .eml)"
        )
