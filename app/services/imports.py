"""Imports: run a file through the import pipeline for an organisation, and record that it happened.

One service function behind the CLI now and the wizard and API later, so they check a mapping the same
way and report the same errors. Problems with the request as a whole (an unreadable file, an unknown
entity, a mapping that leaves a required field unfed) raise ``ValidationFailed`` before any row is
read for loading; problems with single rows are in the returned summary.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from app.errors import ValidationFailed
from app.extensions import db
from app.importers import ImportSummary, ReaderError, open_reader, run_pipeline, suggest_mapping
from app.importers.loading import MODES
from app.importers.pipeline import ON_ERROR
from app.importers.specs import ENTITY_SPECS, EntitySpec
from app.models import Organization
from app.services import audit
from app.services.audit import Actor


def resolve_mapping(headers: list[str], spec: EntitySpec,
                    mapping: Mapping[str, str | None] | None) -> dict[str, str | None]:
    """The mapping to use: the given one checked against the file and the entity, or the suggested one.

    Raises:
        ValidationFailed: under ``mapping`` with every problem: a column the file does not have, a field
            the entity does not have, a field fed twice, required fields left unmapped.
    """
    chosen = dict(mapping) if mapping is not None else suggest_mapping(headers, spec)
    problems = []
    missing_columns = [source for source in chosen if source not in headers]
    if missing_columns:
        problems.append(f"the file has no column {', '.join(map(repr, missing_columns))}; "
                        f"its columns are {', '.join(map(repr, headers))}")
    unknown = [t for t in chosen.values() if t is not None and t not in spec.by_name]
    if unknown:
        problems.append(f"{spec.entity} has no field {', '.join(map(repr, unknown))}; "
                        f"its fields are {', '.join(f.name for f in spec.fields)}")
    targets = [t for t in chosen.values() if t is not None]
    twice = sorted({t for t in targets if targets.count(t) > 1})
    if twice:
        problems.append(f"each field can be fed by one column only: {', '.join(twice)}")
    unmapped = [name for name in spec.required if name not in targets]
    if unmapped:
        problems.append(f"required fields not mapped to any column: {', '.join(unmapped)}")
    if problems:
        raise ValidationFailed({"mapping": problems}, "The column mapping cannot be used.")
    return chosen


def run_import_file(
    org: Organization,
    actor: Actor,
    path: str | os.PathLike[str],
    filename: str,
    entity: str,
    mapping: Mapping[str, str | None] | None = None,
    mode: str = "upsert",
    on_error: str = "skip",
    *,
    sheet: str | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ImportSummary:
    """Import a saved file into ``entity`` records of ``org``; ``mapping=None`` uses the suggested mapping.

    One audit event records the run (entity, file, mode and counts), never one per row.

    Raises:
        ValidationFailed: bad entity, mode or on_error; an unreadable or hostile file (nothing written);
            an unusable mapping.
    """
    spec = ENTITY_SPECS.get(entity)
    problems = {}
    if spec is None:
        problems["entity"] = [f"Unknown entity {entity!r}; choose one of {', '.join(ENTITY_SPECS)}."]
    if mode not in MODES:
        problems["mode"] = [f"Unknown mode {mode!r}; choose one of {', '.join(MODES)}."]
    if on_error not in ON_ERROR:
        problems["on_error"] = [f"Unknown on_error {on_error!r}; choose one of {', '.join(ON_ERROR)}."]
    if problems or spec is None:
        raise ValidationFailed(problems)
    try:
        reader = open_reader(path, filename)
        chosen = resolve_mapping(reader.headers(sheet), spec, mapping)
        summary = run_pipeline(reader, sheet, chosen, spec, org, mode=mode, on_error=on_error, dry_run=dry_run,
                               progress=progress)
    except ReaderError as exc:
        raise ValidationFailed({"file": [str(exc)]}, f"The file cannot be imported: {exc}") from exc
    if not dry_run:
        audit.record(org, actor, "import.completed", object_type="import",
                     details={"entity": entity, "file": filename, "mode": mode, "on_error": on_error,
                              **summary.as_dict()})
        db.session.commit()
    return summary
