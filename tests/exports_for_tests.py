"""A finished export made without a worker, for the access walkers that need one id per organisation."""

from __future__ import annotations

from app.extensions import db
from app.models import ExportJob, Organization
from app.services import exports


def finished_export(org: Organization, entity: str = "people", fmt: str = "csv") -> ExportJob:
    """A completed export of ``org`` with its file on disk (written by the real service, in this process)."""
    export = ExportJob(organization_id=org.id, requested_by_label="walker@example.org", entity=entity, format=fmt,
                       columns=exports.columns_of(entity), filters={})
    db.session.add(export)
    db.session.commit()
    exports.execute_export(export)
    return export
