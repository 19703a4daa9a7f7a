"""Each service's cross-field rule reads only the fields it declares (``check_reads``).

The import runs a rule once per distinct combination of those fields' values and hands it nothing else,
so a rule reading an undeclared field would judge imported rows on a value it never gets.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.services.entities import ENTITIES


class ReadRecorder(dict):
    """The values a rule gets (all empty: no rule queries then), remembering every key it asks for."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(dict.fromkeys(names))
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


CHECKED = {name: service for name, service in ENTITIES.items() if service.check is not None}


def test_the_entities_with_rules_are_all_covered():
    assert set(CHECKED) == {"clients", "projects", "people", "assignments", "time_entries"}


@pytest.mark.parametrize("entity", sorted(CHECKED))
def test_rule_reads_only_its_declared_fields(entity):
    service = CHECKED[entity]
    values = ReadRecorder(list(service.fields))
    service.check(None, values, None)
    assert values.read, "the rule read nothing: is it called with the record's values?"
    assert values.read <= set(service.check_reads), f"{entity}: also reads {values.read - set(service.check_reads)}"
