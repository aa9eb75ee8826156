from django.contrib import admin

from todos.models import Tag, Todo


@admin.register(Todo)
class TodoAdmin(admin.ModelAdmin):
    list_display = ["title", "done", "owner", "updated_at"]
    list_filter = ["done"]
    search_fields = ["title"]
    filter_horizontal = ["tags"]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    search_fields = ["name"]
