"""List, detail, create, edit and delete pages for every core entity.

One set of views serves all entities; each gets its own URLs and endpoint
names (``data.people_list``, ``data.people_detail`` ...) from ``PAGES``.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from wtforms.fields.choices import SelectChoice

from app.blueprints.data.pages import PAGES, EntityPage
from app.blueprints.helpers import apply_errors, current_actor, int_arg, text_arg
from app.errors import ValidationFailed
from app.security import current_org, require_permission
from app.services import entities
from app.services.records import ListQuery

bp = Blueprint("data", __name__)


def _bind_choices(page: EntityPage, form) -> None:
    org = current_org()
    for name, model in form.related.items():
        records = entities.service_for_model(model).choices(org)
        getattr(form, name).choices = [SelectChoice("", "—")] + [SelectChoice(i, label) for i, label in records]


def _list(page: EntityPage):
    org = current_org()
    query = ListQuery(
        search=text_arg("q", 200),
        filters=request.args,
        sort=request.args.get("sort", ""),
        page=int_arg("page"),
    )
    results = page.service.page(org, query)
    filter_choices = {
        f.name: entities.service_for_model(f.related).choices(org) for f in page.service.filters if f.related
    }
    return render_template(
        "data/list.html", page=page, results=results, query=query,
        sort=query.sort or page.service.default_sort, filter_choices=filter_choices,
    )


def _detail(page: EntityPage, record_id: int):
    record = page.service.get(current_org(), record_id)
    return render_template("data/detail.html", page=page, record=record)


def _save(page: EntityPage, record=None):
    """The create form (``record`` None) or the edit form; one flow for both."""
    org = current_org()
    form = page.form(obj=record)
    _bind_choices(page, form)
    if form.validate_on_submit():
        try:
            if record is None:
                record = page.service.create(org, current_actor(), form.values())
                flash(f"Created {page.singular} {record}.", "success")
            else:
                page.service.update(org, current_actor(), record, form.values())
                flash(f"Saved {page.singular} {record}.", "success")
        except ValidationFailed as exc:
            apply_errors(form, exc)
        else:
            return redirect(url_for(f"data.{page.slug}_detail", record_id=record.id))
    status = 422 if form.errors or form.form_errors else 200
    return render_template("data/form.html", page=page, form=form, record=record), status


def _create(page: EntityPage):
    return _save(page)


def _edit(page: EntityPage, record_id: int):
    return _save(page, page.service.get(current_org(), record_id))


def _delete(page: EntityPage, record_id: int):
    org = current_org()
    record = page.service.get(org, record_id)
    label = str(record)
    page.service.delete(org, current_actor(), record)
    flash(f"Deleted {page.singular} {label}.", "success")
    return redirect(url_for(f"data.{page.slug}_list"))


def _register(page: EntityPage) -> None:
    read = require_permission("integrations.read")
    write = require_permission("integrations.write")
    slug = page.slug
    url = "/" + slug.replace("_", "-")

    def list_view():
        return _list(page)

    def detail_view(record_id: int):
        return _detail(page, record_id)

    def create_view():
        return _create(page)

    def edit_view(record_id: int):
        return _edit(page, record_id)

    def delete_view(record_id: int):
        return _delete(page, record_id)

    bp.add_url_rule(f"{url}/", f"{slug}_list", read(list_view))
    bp.add_url_rule(f"{url}/new", f"{slug}_create", write(create_view), methods=["GET", "POST"])
    bp.add_url_rule(f"{url}/<int:record_id>", f"{slug}_detail", read(detail_view))
    bp.add_url_rule(f"{url}/<int:record_id>/edit", f"{slug}_edit", write(edit_view), methods=["GET", "POST"])
    bp.add_url_rule(f"{url}/<int:record_id>/delete", f"{slug}_delete", write(delete_view), methods=["POST"])


for _page in PAGES.values():
    _register(_page)


@bp.app_template_global()
def record_url(record) -> str | None:
    """The detail page of any core record, for links between related records."""
    for page in PAGES.values():
        if isinstance(record, page.service.model):
            return url_for(f"data.{page.slug}_detail", record_id=record.id)
    return None
