from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from .models import LiveKitConfig


class LiveKitConfigForm(forms.ModelForm):
    # The secret is write-only: never rendered back; left empty on an edit, the stored one is kept.
    api_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave empty to keep the stored secret.",
    )

    class Meta:
        model = LiveKitConfig
        fields = ["project", "url", "api_key", "api_secret", "token_ttl", "voicebot_service", "enabled"]

    def clean_api_secret(self) -> str:
        secret: str = self.cleaned_data.get("api_secret") or ""
        if secret:
            return secret
        if self.instance.pk and self.instance.api_secret:
            return self.instance.api_secret
        raise forms.ValidationError("The API secret is required.")


@admin.register(LiveKitConfig)
class LiveKitConfigAdmin(admin.ModelAdmin):
    form = LiveKitConfigForm
    list_display = ["project", "url", "api_key", "voicebot_service", "enabled", "updated_at"]
    list_filter = ["enabled"]
    search_fields = ["project__slug", "url"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["updated_at"] if obj else []
