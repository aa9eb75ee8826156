# Runs one piece of code per line it reads on stdin (each JSON-encoded), in one scope, and
# answers each with "OUT " and the JSON of the `out` the code set: Django loads once, and the
# test compares a client's state with REST between writes.
import json
import sys

scope = {}
while line := sys.stdin.readline():
    scope["out"] = None
    exec(json.loads(line), scope)
    print("OUT " + json.dumps(scope["out"]), flush=True)
