"""A test whose tool or server is not installed: skipped, or failed under REQUIRE_SERVICES=1.

CI sets REQUIRE_SERVICES=1, so that a missing PostgreSQL, Redis, Chromium, node or git fails the
run there instead of passing it with tests skipped. The benchmarks import modules that use this
without pytest, so pytest is imported only when a test is about to be skipped or failed.
"""

from __future__ import annotations

import os


def missing(reason: str) -> None:
    """Skip the running test for `reason`, or fail it under REQUIRE_SERVICES=1."""
    import pytest

    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)
