from django.contrib import admin

from .models import InboundMessage, Mailbox, OutboundMessage


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):
    list_display = ["address", "service", "room", "open", "plus_rooms", "enabled"]
    list_filter = ["enabled", "open"]
    search_fields = ["address"]
    raw_id_fields = ["service", "room"]


@admin.register(InboundMessage)
class InboundMessageAdmin(admin.ModelAdmin):
    list_display = ["received_at", "sender", "recipient", "subject", "status", "reason", "esp"]
    list_filter = ["status", "esp"]
    search_fields = ["sender", "subject", "message_key"]
    readonly_fields = [f.name for f in InboundMessage._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False


@admin.register(OutboundMessage)
class OutboundMessageAdmin(admin.ModelAdmin):
    list_display = ["created_at", "to_address", "subject", "status", "sent_at"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in OutboundMessage._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False
