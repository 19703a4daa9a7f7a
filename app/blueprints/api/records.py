"""The core records over REST: ``/people``, ``/clients``, ``/projects``, ``/tasks``,
``/assignments``, ``/time-entries``, ``/comments``.

One set of views serves every entity in ``ENTITIES``; ``_register`` gives each its own
URLs, endpoint names (``api_records.people_list`` ...) and schemas. The views parse,
resolve natural keys, check ``If-Match`` and call the same ``RecordService`` the
console pages use, so rules, audit events and tenancy are never implemented twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Response, request, url_for

from app.blueprints.api.parsing import Blueprint
from app.blueprints.api.schemas.records import SCHEMAS, EntitySchemas
from app.errors import PreconditionFailed, ValidationFailed
from app.security.api_auth import api_actor, current_principal, require_scope
from app.services.querying import Page
from app.services.records import ListQuery

bp = Blueprint("api_records", __name__, description="People, clients, projects, tasks and the work on them")

SECURITY = [{"bearerAuth": []}]
ETAG_HEADER = {
    "ETag": {
        "description": 'The record\'s version as a strong entity tag, e.g. "3"; send it back in If-Match.',
        "required": True,
        "schema": {"type": "string"},
    }
}
LINK_HEADER = {
    "Link": {
        "description": 'The first, last, next and previous pages (RFC 8288), e.g. <...?page=2>; rel="next".',
        "required": True,
        "schema": {"type": "string"},
    }
}
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "schema": {"type": "string"},
    "description": 'Only change the record if it is still at this version (its ETag, e.g. "3", or *); '
    "otherwise the answer is 412.",
}
ERRORS = {
    401: "No valid credential",
    403: "The credential lacks the scope",
    404: "No such record in the credential's organisation",
    409: "Another writer changed the record at the same moment",
    412: "If-Match names a version the record no longer has",
    422: "Invalid input; errors names each field",
    429: "Over the rate limit; see Retry-After",
}


@dataclass(frozen=True)
class Operation:
    """One endpoint of every entity; ``response`` and ``arguments`` name EntitySchemas attributes."""

    action: str
    method: str
    item: bool  # on /<entity>/<id> rather than /<entity>
    status: int
    summary: str
    answers: str
    description: str
    errors: tuple[int, ...]
    response: str | None = "record"
    arguments: str | None = None


OPERATIONS = (
    Operation("list", "GET", False, 200, "List {title}", "One page of records",
              "Stable order (by id unless `sort` says otherwise), `page` / `per_page` with links in the body and "
              "the `Link` header, and filters.", (401, 403, 422, 429), response="page", arguments="query"),
    Operation("create", "POST", False, 201, "Create a {label}", "The new {label}",
              "Related records by id or by natural key. Answers the record with its ETag and Location.",
              (401, 403, 409, 422, 429), arguments="create"),
    Operation("get", "GET", True, 200, "Read a {label}", "The {label}", "The record, with its version as ETag.",
              (401, 403, 404, 429)),
    Operation("replace", "PUT", True, 200, "Replace a {label}", "The {label} as saved",
              "Every field is replaced: fields left out become null (or their default). Honours If-Match.",
              (401, 403, 404, 409, 412, 422, 429), arguments="create"),
    Operation("update", "PATCH", True, 200, "Change some fields of a {label}", "The {label} as saved",
              "Only the fields sent change. Honours If-Match.", (401, 403, 404, 409, 412, 422, 429),
              arguments="patch"),
    Operation("delete", "DELETE", True, 204, "Delete a {label}", "Deleted", "Honours If-Match.",
              (401, 403, 404, 409, 412, 429), response=None),
)


# --- helpers the views share ----------------------------------------------------------


def _no_content() -> Response:
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response


def _check_if_match(record: Any) -> None:
    """``If-Match`` absent: go ahead. Present: it must name the record's version (or be ``*``)."""
    if "If-Match" not in request.headers:
        return
    if_match = request.if_match
    if if_match.star_tag or if_match.contains_weak(str(record.version)):
        return
    raise PreconditionFailed(
        f'The record is at version {record.version} ("{record.version}"), not the one in If-Match; '
        "read it again, reapply your change and send the new ETag."
    )


def _resolve_references(entity: EntitySchemas, body: dict[str, Any]) -> dict[str, Any]:
    """Turn natural keys (``project``: "WEB-2026") into ids (``project_id``) within the organisation."""
    org = current_principal().organization
    values = dict(body)
    errors: dict[str, list[str]] = {}
    for ref in entity.references:
        if ref.alias not in values:
            continue
        key = values.pop(ref.alias)
        if ref.field in values:
            errors[ref.alias] = [f"Give {ref.field} or {ref.alias}, not both."]
            continue
        record_id = ref.service.find_id(org, key)
        if record_id is None:
            errors[ref.alias] = [f"No {ref.service.label} with {ref.key} {key!r} in this organisation."]
        else:
            values[ref.field] = record_id
    if errors:
        raise ValidationFailed(errors)
    return values


def _defaults(entity: EntitySchemas) -> dict[str, Any]:
    """What PUT stores for a field the body leaves out: the column's default, else null."""
    values = {}
    for name in entity.service.fields:
        default = entity.service.model.__table__.c[name].default
        if default is None:
            values[name] = None
        elif default.is_callable:
            values[name] = default.arg(None)
        else:
            values[name] = default.arg
    return values


def _page_url(page: int) -> str:
    args = request.args.to_dict()
    args["page"] = page
    return url_for(request.endpoint, _external=True, **args)


def _list_response(results: Page) -> tuple[dict[str, Any], int, dict[str, str]]:
    """The page in the envelope, with its links also in a ``Link`` header (RFC 8288)."""
    links = {
        "self": _page_url(results.page),
        "first": _page_url(1),
        "last": _page_url(results.pages),
        "next": _page_url(results.page + 1) if results.has_next else None,
        "prev": _page_url(results.page - 1) if results.has_prev else None,
    }
    body = {
        "data": results.items,
        "meta": {"page": results.page, "per_page": results.per_page, "total": results.total, "pages": results.pages},
        "links": links,
    }
    link_header = ", ".join(f'<{url}>; rel="{rel}"' for rel, url in links.items() if url and rel != "self")
    return body, 200, {"Link": link_header}


def _list_query(entity: EntitySchemas, args: dict[str, Any]) -> ListQuery:
    filters = {}
    for flt in entity.service.filters:
        value = args.get(flt.name)
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        filters[flt.name] = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return ListQuery(
        search=args.get("q", ""),
        filters=filters,
        sort=args["sort"],
        page=args["page"],
        per_page=args["per_page"],
        external_id=args.get("external_id", ""),
        updated_since=args.get("updated_since"),
    )


# --- the views, registered once per entity ----------------------------------------------


def _register(entity: EntitySchemas) -> None:
    service, slug, title, label = entity.service, entity.slug, entity.title, entity.service.label

    def list_view(args):
        org = current_principal().organization
        return _list_response(service.page(org, _list_query(entity, args)))

    def create_view(body):
        org = current_principal().organization
        record = service.create(org, api_actor(), _resolve_references(entity, body))
        location = url_for(f"{bp.name}.{slug}_get", record_id=record.id, _external=True)
        return record, 201, {"ETag": f'"{record.version}"', "Location": location}

    def get_view(record_id: int):
        record = service.get(current_principal().organization, record_id)
        return record, 200, {"ETag": f'"{record.version}"'}

    def replace_view(body, record_id: int):
        org = current_principal().organization
        record = service.get(org, record_id)
        _check_if_match(record)
        values = {**_defaults(entity), **_resolve_references(entity, body)}
        record = service.update(org, api_actor(), record, values)
        return record, 200, {"ETag": f'"{record.version}"'}

    def patch_view(body, record_id: int):
        org = current_principal().organization
        record = service.get(org, record_id)
        _check_if_match(record)
        record = service.update(org, api_actor(), record, _resolve_references(entity, body))
        return record, 200, {"ETag": f'"{record.version}"'}

    def delete_view(record_id: int):
        org = current_principal().organization
        record = service.get(org, record_id)
        _check_if_match(record)
        service.delete(org, api_actor(), record)
        return _no_content()

    views = {"list": list_view, "create": create_view, "get": get_view, "replace": replace_view,
             "update": patch_view, "delete": delete_view}
    for op in OPERATIONS:
        view = views[op.action]
        view.__name__ = f"{slug}_{op.action}"
        schema = getattr(entity, op.response) if op.response else None
        headers = {"record": ETAG_HEADER, "page": LINK_HEADER}.get(op.response)
        wrapped = bp.response(op.status, schema, description=op.answers.format(label=label), headers=headers)(view)
        wrapped = bp.problems(ERRORS, *op.errors)(wrapped)
        extra = {"parameters": [IF_MATCH]} if op.method in {"PUT", "PATCH", "DELETE"} else {}
        summary = op.summary.format(label=label, title=title.lower())
        wrapped = bp.doc(summary=summary, description=op.description, tags=[title], security=SECURITY, **extra)(
            wrapped
        )
        # The arguments go last (outermost): flask-smorest deep-copies the doc so far, schemas included, at each
        # decorator, so adding the arguments' schema after the doc-only decorators saves a copy at each of them.
        if op.arguments:
            location = "query" if op.method == "GET" else "json"
            wrapped = bp.arguments(getattr(entity, op.arguments), location=location)(wrapped)
        # The scope check is outermost, so a caller without a valid credential gets 401 before its body is read.
        scope = require_scope("data.read" if op.method == "GET" else "data.write")
        url = f"{entity.url}/<int:record_id>" if op.item else entity.url
        bp.route(url, methods=[op.method], endpoint=f"{slug}_{op.action}")(scope(wrapped))


for _entity in SCHEMAS.values():
    _register(_entity)
