from rest_framework import serializers

from todos.models import Todo


class TodoSerializer(serializers.ModelSerializer):
    owner = serializers.ReadOnlyField(source="owner.username", default=None)

    class Meta:
        model = Todo
        fields = ["id", "title", "done", "owner", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
