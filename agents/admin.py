from django.contrib import admin

from agents.models import CannedResponse, Disposition, WrapUp


@admin.register(CannedResponse)
class CannedResponseAdmin(admin.ModelAdmin):
    list_display = ["title", "shortcut"]
    search_fields = ["title", "body", "shortcut"]


@admin.register(Disposition)
class DispositionAdmin(admin.ModelAdmin):
    list_display = ["label", "code", "active"]
    list_filter = ["active"]


@admin.register(WrapUp)
class WrapUpAdmin(admin.ModelAdmin):
    list_display = ["conversation", "agent", "disposition", "created_at"]
    list_filter = ["disposition", "agent"]
    readonly_fields = [
        "conversation",
        "task",
        "agent",
        "disposition",
        "notes",
        "created_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False
