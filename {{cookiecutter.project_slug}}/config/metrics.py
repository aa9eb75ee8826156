"""/metrics: this server process's numbers (rest_live/metrics.py) in Prometheus's text format.

Only a scraper that sends `Authorization: Bearer <METRICS_TOKEN>` gets them; with no token set the
endpoint is off and answers 404, so it is never open by mistake. Staff sessions get no exception:
one credential, the scraper's, is one thing to rotate and one way in. Each server process counts
its own sockets and frames, so scrape each process (README, Metrics).
"""

import secrets

from django.conf import settings
from django.http import Http404, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


async def metrics(request):
    # Async, so a scrape is answered on the event loop even while the thread that runs the ORM
    # work (live evaluations among it) is busy.
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("/metrics is off: set METRICS_TOKEN to turn it on.")
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        credentials.strip().encode(), token.encode()
    ):
        response = HttpResponse(
            "/metrics needs the header Authorization: Bearer <METRICS_TOKEN>.\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
