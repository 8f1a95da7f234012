"""`manage.py agenthost --url URL`: run agents of Python services as room participants."""

import asyncio
import os
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from agents.host import AgentHost


class Command(BaseCommand):
    help = "Run the agent host: claim agents.call dispatches of Python services and run them in their rooms."

    def add_arguments(self, parser: CommandParser) -> None:
        default = settings.MESHSITE_PUBLIC_URL or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
        parser.add_argument("--url", default=default, help=f"A web node to connect agents to (default {default}).")
        parser.add_argument("--max-agents", type=int, default=200)

    def handle(self, *args: Any, **options: Any) -> None:
        asyncio.run(self.serve(options["url"], options["max_agents"]))

    async def serve(self, url: str, max_agents: int) -> None:
        host = AgentHost(url, max_agents=max_agents)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(host.stop()))
        self.stdout.write(f"agent host {host.id} running agents against {url}")
        self.stdout.flush()
        await host.run()
        await host.stop()
