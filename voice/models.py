"""Per-project LiveKit server settings for voice conversations (docs/voice.md)."""

from django.core.exceptions import ValidationError
from django.db import models

from rooms.models import Project


class LiveKitConfig(models.Model):
    """Where a project's voice conversations run: a LiveKit server (self-hosted or LiveKit Cloud)
    and the API key and secret that sign its access tokens. The secret is stored as given (it signs
    tokens, so it cannot be hashed); the admin never shows it back."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="livekit")
    url = models.CharField(
        max_length=300,
        help_text="The server's URL as browsers reach it: wss://your-project.livekit.cloud or "
        "wss://livekit.example.com. Its server API is reached over the same host with https.",
    )
    api_key = models.CharField(max_length=200)
    api_secret = models.CharField(max_length=200)
    token_ttl = models.PositiveIntegerField(
        default=600, help_text="Seconds a minted access token is valid for joining (LiveKit refreshes joined ones)."
    )
    voicebot_service = models.SlugField(
        max_length=63, default="voicebot", help_text="The service (Agents → Services) dispatched as the VoiceBot."
    )
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "LiveKit server"

    def __str__(self) -> str:
        return f"{self.project.slug}: {self.url}"

    def clean(self) -> None:
        if not self.url.startswith(("ws://", "wss://", "http://", "https://")):
            raise ValidationError({"url": "Give the server's URL, starting with wss:// (or ws:// for a local server)."})
        if not 30 <= self.token_ttl <= 86_400:
            raise ValidationError({"token_ttl": "Between 30 seconds and a day."})

    @property
    def api_url(self) -> str:
        """The HTTP(S) base of the server API (Twirp) for the same server."""
        if self.url.startswith("wss://"):
            return "https://" + self.url.removeprefix("wss://")
        if self.url.startswith("ws://"):
            return "http://" + self.url.removeprefix("ws://")
        return self.url
