from django.contrib import admin

from routing.models import Task, TaskChannel, Workflow


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    list_display = ["name", "sid", "task_reservation_timeout"]
    search_fields = ["name", "sid"]


@admin.register(TaskChannel)
class TaskChannelAdmin(admin.ModelAdmin):
    list_display = ["unique_name", "friendly_name", "sid"]


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["id", "workflow", "channel", "priority", "status", "created_at"]
    list_filter = ["status", "workflow", "channel"]
    readonly_fields = ["created_at", "updated_at"]
