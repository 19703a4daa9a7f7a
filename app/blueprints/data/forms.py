"""One form per core entity. Forms parse shape only; business rules live in the services."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, DecimalField, EmailField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from app.models import PRIORITIES, PROJECT_STATUSES, TASK_STATUSES, Client, Person, Project, Task


def optional_int(value: Any) -> int | None:
    if value in (None, "", "None"):
        return None
    return int(value)


class CommaListField(StringField):
    """A list of short strings typed as one comma-separated line."""

    def _value(self) -> str:
        return ", ".join(self.data) if isinstance(self.data, list) else (self.data or "")

    def process_formdata(self, valuelist: list[str]) -> None:
        self.data = [s.strip() for s in valuelist[0].split(",") if s.strip()] if valuelist else []


class EntityForm(FlaskForm):
    """Base form: ``related`` names the select fields filled with the organisation's records."""

    related: dict[str, type] = {}

    def values(self) -> dict[str, Any]:
        return {name: field.data for name, field in self._fields.items() if name != "csrf_token"}


def choice_select(label: str, choices: tuple[str, ...], default: str) -> SelectField:
    options = [SelectChoice(c, c.replace("_", " ").capitalize()) for c in choices]
    return SelectField(label, choices=options, default=default)


def external_id_field() -> StringField:
    return StringField("External ID", validators=[Length(max=255)],
                       description="The record's id in the system it came from, if any.")


def related_select(label: str, required: bool = False) -> SelectField:
    validators = [DataRequired()] if required else [Optional()]
    return SelectField(label, coerce=optional_int, validators=validators, validate_choice=False)


class PersonForm(EntityForm):
    related = {"manager_id": Person}

    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    title = StringField("Title", validators=[Length(max=200)])
    department = StringField("Department", validators=[Length(max=200)])
    cost_centre = StringField("Cost centre", validators=[Length(max=100)])
    manager_id = related_select("Manager")
    skills = CommaListField("Skills", description="Separated by commas.")
    hourly_rate = DecimalField("Hourly rate", places=2, validators=[Optional(), NumberRange(min=0)])
    weekly_capacity = DecimalField(
        "Weekly capacity (hours)", places=2, validators=[Optional(), NumberRange(min=0, max=168)]
    )
    active = BooleanField("Active", default=True)
    external_id = external_id_field()


class ClientForm(EntityForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    contact_email = EmailField("Contact email", validators=[Length(max=320)])
    phone = StringField("Phone", validators=[Length(max=50)])
    website = StringField("Website", validators=[Length(max=500)])
    notes = TextAreaField("Notes", validators=[Length(max=10000)])
    active = BooleanField("Active", default=True)
    external_id = external_id_field()


class ProjectForm(EntityForm):
    related = {"client_id": Client}

    code = StringField("Code", validators=[DataRequired(), Length(max=50)], description="Unique, such as WEB-2026.")
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    client_id = related_select("Client")
    status = choice_select("Status", PROJECT_STATUSES, "planned")
    priority = choice_select("Priority", PRIORITIES, "medium")
    start_date = DateField("Start date", validators=[Optional()])
    end_date = DateField("End date", validators=[Optional()])
    budget = DecimalField("Budget", places=2, validators=[Optional(), NumberRange(min=0)])
    description = TextAreaField("Description", validators=[Length(max=20000)])
    external_id = external_id_field()


class TaskForm(EntityForm):
    related = {"project_id": Project, "assignee_id": Person}

    project_id = related_select("Project", required=True)
    title = StringField("Title", validators=[DataRequired(), Length(max=300)])
    description = TextAreaField("Description", validators=[Length(max=20000)])
    status = choice_select("Status", TASK_STATUSES, "todo")
    priority = choice_select("Priority", PRIORITIES, "medium")
    assignee_id = related_select("Assignee")
    estimate_hours = DecimalField("Estimate (hours)", places=2, validators=[Optional(), NumberRange(min=0)])
    due_date = DateField("Due date", validators=[Optional()])
    external_id = external_id_field()


class AssignmentForm(EntityForm):
    related = {"person_id": Person, "project_id": Project, "task_id": Task}

    person_id = related_select("Person", required=True)
    project_id = related_select("Project", required=True)
    task_id = related_select("Task")
    hours = DecimalField("Hours", places=2, validators=[DataRequired(), NumberRange(min=0.01)])
    start_date = DateField("Start date", validators=[Optional()])
    end_date = DateField("End date", validators=[Optional()])
    external_id = external_id_field()


class TimeEntryForm(EntityForm):
    related = {"person_id": Person, "project_id": Project, "task_id": Task}

    person_id = related_select("Person", required=True)
    project_id = related_select("Project", required=True)
    task_id = related_select("Task")
    spent_on = DateField("Date", validators=[DataRequired()])
    hours = DecimalField("Hours", places=2, validators=[DataRequired(), NumberRange(min=0.01, max=24)])
    billable = BooleanField("Billable", default=True)
    note = TextAreaField("Note", validators=[Length(max=5000)])
    external_id = external_id_field()


class CommentForm(EntityForm):
    related = {"task_id": Task, "author_id": Person}

    task_id = related_select("Task", required=True)
    author_id = related_select("Author")
    body = TextAreaField("Comment", validators=[DataRequired(), Length(max=20000)])
    external_id = external_id_field()
