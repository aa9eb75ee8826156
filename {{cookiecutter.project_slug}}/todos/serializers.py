from rest_framework import serializers

from todos.models import Tag, Todo


class TodoSerializer(serializers.ModelSerializer):
    owner = serializers.ReadOnlyField(source="owner.username", default=None)
    # Tags by name; an unknown name is refused. Live subscribers follow renames and tagging too.
    tags = serializers.SlugRelatedField(
        many=True, slug_field="name", queryset=Tag.objects.all(), required=False
    )

    class Meta:
        model = Todo
        fields = ["id", "title", "done", "owner", "tags", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
