import json

from django.contrib import admin
from django.utils.html import format_html

from bots.models import Contact, Conversation, Message, MessageEvent, Sender, Template


@admin.register(Sender)
class SenderAdmin(admin.ModelAdmin):
    list_display = ["address", "kind", "friendly_name", "messaging_service_sid"]
    list_filter = ["kind"]
    search_fields = ["address", "friendly_name"]


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["address", "profile_name", "kind", "updated_at"]
    list_filter = ["kind"]
    search_fields = ["address", "profile_name"]
    readonly_fields = ["created_at", "updated_at"]


class MessageInline(admin.TabularInline):
    model = Message
    fields = readonly_fields = (
        "created_at",
        "direction",
        "author",
        "body",
        "status",
        "error_code",
    )
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "contact", "sender", "phase", "opened_at", "last_message_at"]
    list_filter = ["phase", "sender"]
    search_fields = ["contact__address", "contact__profile_name"]
    list_select_related = ["contact", "sender"]
    readonly_fields = ["opened_at", "closed_at", "last_message_at"]
    inlines = [MessageInline]


class MessageEventInline(admin.TabularInline):
    model = MessageEvent
    fields = readonly_fields = ("created_at", "status", "error_code", "detail")
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "direction",
        "from_address",
        "to_address",
        "short_body",
        "status",
        "error_code",
    ]
    list_filter = ["direction", "status", "author"]
    search_fields = ["provider_sid", "from_address", "to_address", "body"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "conversation",
        "direction",
        "author",
        "agent",
        "from_address",
        "to_address",
        "body",
        "media",
        "template",
        "template_variables",
        "provider_sid",
        "status",
        "error_code",
        "error_message",
        "webhook_fields",
        "created_at",
        "updated_at",
        "send_at",
        "next_attempt_at",
        "attempts",
        "sent_at",
        "delivered_at",
        "read_at",
        "processed_at",
    ]
    inlines = [MessageEventInline]

    exclude = ["raw"]

    @admin.display(description="Body")
    def short_body(self, message: Message) -> str:
        return message.body[:60]

    @admin.display(description="Webhook fields")
    def webhook_fields(self, message: Message) -> str:
        if not message.raw:
            return "-"
        return format_html(
            "<pre>{}</pre>", json.dumps(message.raw, indent=2, ensure_ascii=False)
        )

    # Messages are sent through bots.messaging.send(), which checks what the channel
    # allows, and they are a record: admin only reads them.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "language", "content_sid"]
    search_fields = ["name", "body"]


from bots import admin_flows  # noqa: E402,F401  (flows and executions)
