"""The columnar path of map + validate: a chunk's cells column by column, each distinct value once.

The row path (:class:`.mapping.RowMapper` then :func:`.validation.validate_chunk`) costs tens of
microseconds of Python per row, most of it repeated: the same department, rate, date or status typed,
normalised and checked again on every row. Here each column of a chunk is turned into a table of its
distinct cells, every cell converted once through the very same functions (the mapping's coercers,
the service's normaliser, :func:`.validation.field_problem`), and the rows are read off the tables.
A text column whose cells are mostly distinct (emails, names) is converted as a whole column instead,
in a few C-level passes that apply the same rules, as long as none of its cells breaks one.

The columnar path only decides which rows are clean, it never words an error: a row with any doubt
(a cell that fails, a reader problem, the service's row rule, a key repeated in the file, a unique
value taken, a reference not found, a self-reference) goes to the row path with the rest of the
chunk's doubtful rows, and the row path says what is wrong, or loads it (a manager later in the same
chunk). So the messages have one source, and the two paths agree by construction; the differential
tests (``tests/integration/test_import_columnar.py``) check that they do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import Any

from .formulas import restore_formula_text
from .loading import Batch
from .mapping import Invalid, RowMapper
from .readers.base import DataRow
from .specs import EntitySpec, ImportField
from .validation import OrgContext, field_problem, lookup_references, unique_owners


class _Failed:
    """The table entry of a cell that does not convert or breaks a field rule."""

    __slots__ = ()


FAILED: Any = _Failed()


def _converter(f: ImportField, coerce: Callable[[str], Any] | None, blank: Any,
               normalise: Callable[[Any], Any] | None) -> Callable[[str], Any]:
    """Cell text → the value the row path would hold after map and normalise, or ``FAILED``."""

    def convert(cell: str) -> Any:
        text = cell.strip()
        if not text:
            value = blank
        elif coerce is None:
            value = text
        else:
            try:
                value = coerce(text)
            except Invalid:
                return FAILED
        if normalise is not None:
            value = normalise(value)
        return FAILED if field_problem(f, value) is not None else value

    return convert


@dataclass
class Converted:
    """A chunk after :meth:`ColumnMapper.convert`: its rows, its converted columns, the rows in doubt so far."""

    chunk: list[DataRow]
    columns: list[list[Any]]
    doubtful: set[int]


class ColumnMapper:
    """A mapping compiled once per import for the columnar path (see the module docstring)."""

    def __init__(self, mapper: RowMapper, spec: EntitySpec, headers: list[str], restore_formulas: bool) -> None:
        self.spec = spec
        self.sources = mapper.sources
        self.restore_formulas = restore_formulas
        # field → (coercer, value of a blank cell), as the row mapper compiled them
        plan = {name: (coerce, default if default is not None else empty)
                for _, name, coerce, default, empty in mapper.plan}
        self.fields = [f for f in spec.fields if f.name in self.sources]
        self.normalisers = [spec.field_normaliser(f.name) if f.reference is None else None for f in self.fields]
        self.converters = [_converter(f, plan[f.name][0], plan[f.name][1], normalise)
                           for f, normalise in zip(self.fields, self.normalisers, strict=True)]
        self.texts = [plan[f.name][0] is None for f in self.fields]  # kept as typed: no coercer
        self.names = [f.column for f in self.fields]  # the model columns of a Batch, in its order
        self.getter = itemgetter(*(headers.index(self.sources[f.name]) for f in self.fields))
        self.key_index = next(i for i, f in enumerate(self.fields) if f.name == spec.natural_key)

    def convert(self, chunk: list[DataRow], ctx: OrgContext) -> Converted:
        """The chunk's cells converted and checked on their own; needs no database, so it can run meanwhile.

        It must never touch the session, which a chunk's step may be using in another thread: the
        service's row rule sees references blanked, the only values its rules would look up.
        """
        doubtful: set[int] = {i for i, row in enumerate(chunk) if row[2] is not None}
        columns: list[list[Any]] = []
        for index, column in enumerate(self._cells(chunk)):
            distinct = set(column)
            mostly_unique = 2 * len(distinct) > len(column)
            values = self._unique_texts(index, column) if self.texts[index] and mostly_unique else None
            if values is None:
                convert = self.converters[index]
                table = {cell: convert(cell) for cell in distinct}
                values = list(map(table.__getitem__, column))
                if any(value is FAILED for value in table.values()):
                    doubtful.update(i for i, value in enumerate(values) if value is FAILED)
            columns.append(values)
        for f, values in zip(self.fields, columns, strict=True):
            repeated = ctx.duplicates.get(f.name) if f.unique else None
            if repeated:
                doubtful.update(i for i, value in enumerate(values) if value is not None and hash(value) in repeated)
        self._check_rows(columns, doubtful)
        return Converted(chunk, columns, doubtful)

    def _unique_texts(self, index: int, column: Sequence[str]) -> list[Any] | None:
        """A text column of mostly distinct cells (emails, names) converted in a few C-level passes.

        The converter costs ~0.4 µs a distinct cell in Python, which only pays off where cells repeat.
        This gives what it would give for each cell when every cell is filled and passes the field's
        rules (:func:`.validation.field_problem` on a text: its length and NUL), and ``None`` otherwise,
        so the column goes the converter's way and its failing cells are found there.
        """
        values: list[Any] = list(map(str.strip, column))
        if not all(values):
            return None
        normalise = self.normalisers[index]
        if normalise is not None:
            values = list(map(normalise, values))
            if set(map(type, values)) != {str}:
                return None
        limit = self.fields[index].max_length
        if (limit is not None and max(map(len, values)) > limit) or "\x00" in "".join(values):
            return None
        return values

    def clean_keys(self, converted: Converted) -> list[Any]:
        """The natural keys of the rows not in doubt so far: those whose stored records to look up ahead."""
        doubtful = converted.doubtful
        return [key for i, key in enumerate(converted.columns[self.key_index]) if i not in doubtful]

    def split(self, converted: Converted, ctx: OrgContext) -> tuple[Batch, list[DataRow]]:
        """The chunk's clean rows as a :class:`Batch` (references resolved) and the rest, for the row path.

        The lookups happen here: unique values another record holds, references by natural key.
        """
        spec, chunk, columns, doubtful = self.spec, converted.chunk, converted.columns, converted.doubtful
        keys = columns[self.key_index]
        for f, values in zip(self.fields, columns, strict=True):
            if f.unique and f.name != spec.natural_key:
                owners = unique_owners(spec, f, ctx.org_id,
                                       {v for i, v in enumerate(values) if v is not None and i not in doubtful})
                if owners:
                    doubtful.update(i for i, value in enumerate(values)
                                    if value in owners and owners[value] != keys[i])
        by_column = self._resolve(columns, keys, ctx, doubtful)
        clean = [i for i in range(len(chunk)) if i not in doubtful]
        if len(clean) < len(chunk):
            by_column = {c: [values[i] for i in clean] for c, values in by_column.items()}
        numbers = [chunk[i][0] for i in clean]
        return Batch(numbers, by_column, self.sources), [chunk[i] for i in sorted(doubtful)]

    def _cells(self, chunk: list[DataRow]) -> list[tuple[str, ...]] | list[list[str]]:
        """The mapped columns' cells, column by column; formula quotes taken off as the readers do."""
        picked = list(map(self.getter, [row[1] for row in chunk]))
        columns = [tuple(picked)] if len(self.fields) == 1 else list(zip(*picked, strict=True))
        if not self.restore_formulas:
            return columns
        return [[restore_formula_text(cell) if cell[:1] == "'" else cell for cell in column]
                if "\n'" in "\n" + "\n".join(column) else column for column in columns]

    def _check_rows(self, columns: list[list[Any]], doubtful: set[int]) -> None:
        """The service's row rule (``check``) on the clean rows, once per distinct combination of what it reads.

        References are blanked as the row path does (the rule would query them per row; ``_resolve``
        checks what they must), so a rule reading only references runs once per chunk.
        """
        service = self.spec.service
        if service.check is None:
            return
        read = [i for i, f in enumerate(self.fields) if f.column in service.check_reads]
        given = [i for i in read if self.fields[i].reference is None]
        names = [self.names[i] for i in given]
        blanked = {self.names[i]: None for i in read if self.fields[i].reference is not None}
        verdicts: dict[tuple[Any, ...], bool] = {}
        combinations = zip(*(columns[i] for i in given), strict=True) if given else repeat((), len(columns[0]))
        for index, combination in enumerate(combinations):
            if index in doubtful:
                continue
            verdict = verdicts.get(combination)
            if verdict is None:
                values = dict(zip(names, combination, strict=True)) | blanked
                # the org is only used by lookups, which blanked references never reach
                verdict = verdicts[combination] = bool(service.check(None, values, None))  # type: ignore[arg-type]
            if verdict:
                doubtful.add(index)

    def _resolve(self, columns: list[list[Any]], keys: list[Any], ctx: OrgContext,
                 doubtful: set[int]) -> dict[str, list[Any]]:
        """Model column → values, references resolved to ids by one lookup per reference field."""
        spec = self.spec
        result: dict[str, list[Any]] = {}
        for f, values in zip(self.fields, columns, strict=True):
            ref = f.reference
            if ref is None:
                result[f.column] = values
                continue
            present = set(values) - {None}
            as_key = {v: ref.normalise(v) for v in present if v is not FAILED}
            found = lookup_references(f, ctx.org_id, set(as_key.values())) if as_key else {}
            id_of = {v: match.id for v, key in as_key.items() if (match := found.get(key)) is not None}
            ids = list(map(id_of.get, values))
            # Unknown, deferred (a row of this file) or an error: the row path decides and says.
            unresolved = present - id_of.keys()
            if unresolved:
                doubtful.update(i for i, value in enumerate(values) if value in unresolved)
            if ref.model is spec.model:
                doubtful.update(i for i, value in enumerate(values) if value in id_of and as_key[value] == keys[i])
            projects = result.get("project_id")
            if f.name == "task" and projects is not None:
                doubtful.update(i for i, value in enumerate(values)
                                if value in id_of and found[as_key[value]].project_id != projects[i])
            result[f.column] = ids
        return result
