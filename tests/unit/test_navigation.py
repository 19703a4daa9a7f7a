"""Which sidebar entry a page lights up."""

from __future__ import annotations

import pytest

from app.blueprints.navigation import NAVIGATION


def _current(endpoint: str | None) -> list[str]:
    return [item.label for item in NAVIGATION if item.is_current(endpoint)]


@pytest.mark.parametrize(("endpoint", "expected"), [
    ("dashboard.index", ["Dashboard"]),
    ("data.people_list", ["People"]),
    ("data.time_entries_detail", ["Time entries"]),
    ("imports.history", ["Imports"]),
    ("imports.mapping", ["Imports"]),  # a wizard step, not the entry's own page
    ("upcoming.webhooks", ["Webhooks"]),
    ("auth.login", []),
    (None, []),
])
def test_each_page_lights_exactly_its_area(endpoint, expected):
    assert _current(endpoint) == expected
