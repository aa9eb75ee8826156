# Creates a todo, and kills its own process (SIGKILL) at the point where the committed change
# would be published.
import os
import signal

from rest_live import broadcasting

# The test's hook: die at the point where the committed change would be published.
broadcasting._send = lambda *args: os.kill(os.getpid(), signal.SIGKILL)

from todos.models import Todo  # noqa: E402

Todo.objects.create(title="its writer was killed")
