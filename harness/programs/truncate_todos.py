# Empties the todos table with PostgreSQL's TRUNCATE, which logs no keys.
from django.db import connection

with connection.cursor() as cursor:
    cursor.execute("TRUNCATE todos_todo CASCADE")
