"""How each core entity appears in the console: its columns, detail fields and form."""

from __future__ import annotations

from dataclasses import dataclass

from app.blueprints.data import forms
from app.services import entities
from app.services.records import RecordService


@dataclass(frozen=True)
class Column:
    label: str
    attr: str
    sort: str | None = None  # the service's sort column, when sortable
    link: bool = False  # links to the record's detail page


@dataclass(frozen=True)
class EntityPage:
    slug: str
    title: str
    singular: str
    form: type[forms.EntityForm]
    columns: tuple[Column, ...]
    detail: tuple[Column, ...]

    @property
    def service(self) -> RecordService:
        return entities.service_for(self.slug)


PAGES: dict[str, EntityPage] = {
    page.slug: page
    for page in (
        EntityPage(
            slug="people",
            title="People",
            singular="person",
            form=forms.PersonForm,
            columns=(
                Column("Name", "name", "name", link=True),
                Column("Email", "email", "email"),
                Column("Title", "title", "title"),
                Column("Department", "department", "department"),
                Column("Active", "active"),
                Column("Updated", "updated_at", "updated_at"),
            ),
            detail=(
                Column("Email", "email"),
                Column("Title", "title"),
                Column("Department", "department"),
                Column("Cost centre", "cost_centre"),
                Column("Manager", "manager", link=True),
                Column("Skills", "skills"),
                Column("Hourly rate", "hourly_rate"),
                Column("Weekly capacity (hours)", "weekly_capacity"),
                Column("Active", "active"),
                Column("External ID", "external_id"),
            ),
        ),
        EntityPage(
            slug="clients",
            title="Clients",
            singular="client",
            form=forms.ClientForm,
            columns=(
                Column("Name", "name", "name"),
                Column("Contact email", "contact_email"),
                Column("Phone", "phone"),
                Column("Active", "active"),
                Column("Updated", "updated_at", "updated_at"),
            ),
            detail=(
                Column("Contact email", "contact_email"),
                Column("Phone", "phone"),
                Column("Website", "website"),
                Column("Notes", "notes"),
                Column("Active", "active"),
                Column("External ID", "external_id"),
            ),
        ),
        EntityPage(
            slug="projects",
            title="Projects",
            singular="project",
            form=forms.ProjectForm,
            columns=(
                Column("Code", "code", "code"),
                Column("Name", "name", "name"),
                Column("Client", "client", link=True),
                Column("Status", "status", "status"),
                Column("Priority", "priority", "priority"),
                Column("Start", "start_date", "start_date"),
                Column("End", "end_date", "end_date"),
            ),
            detail=(
                Column("Code", "code"),
                Column("Name", "name"),
                Column("Client", "client", link=True),
                Column("Status", "status"),
                Column("Priority", "priority"),
                Column("Start date", "start_date"),
                Column("End date", "end_date"),
                Column("Budget", "budget"),
                Column("Description", "description"),
                Column("External ID", "external_id"),
            ),
        ),
        EntityPage(
            slug="tasks",
            title="Tasks",
            singular="task",
            form=forms.TaskForm,
            columns=(
                Column("Title", "title", "title"),
                Column("Project", "project", link=True),
                Column("Status", "status", "status"),
                Column("Priority", "priority", "priority"),
                Column("Assignee", "assignee", link=True),
                Column("Due", "due_date", "due_date"),
            ),
            detail=(
                Column("Project", "project", link=True),
                Column("Status", "status"),
                Column("Priority", "priority"),
                Column("Assignee", "assignee", link=True),
                Column("Estimate (hours)", "estimate_hours"),
                Column("Due date", "due_date"),
                Column("Description", "description"),
                Column("External ID", "external_id"),
            ),
        ),
        EntityPage(
            slug="assignments",
            title="Assignments",
            singular="assignment",
            form=forms.AssignmentForm,
            columns=(
                Column("Person", "person"),
                Column("Project", "project", link=True),
                Column("Task", "task", link=True),
                Column("Hours", "hours", "hours"),
                Column("Start", "start_date", "start_date"),
                Column("End", "end_date", "end_date"),
            ),
            detail=(
                Column("Person", "person", link=True),
                Column("Project", "project", link=True),
                Column("Task", "task", link=True),
                Column("Hours", "hours"),
                Column("Start date", "start_date"),
                Column("End date", "end_date"),
                Column("External ID", "external_id"),
            ),
        ),
        EntityPage(
            slug="time_entries",
            title="Time entries",
            singular="time entry",
            form=forms.TimeEntryForm,
            columns=(
                Column("Date", "spent_on", "spent_on"),
                Column("Person", "person", link=True),
                Column("Project", "project", link=True),
                Column("Task", "task", link=True),
                Column("Hours", "hours", "hours"),
                Column("Billable", "billable"),
            ),
            detail=(
                Column("Date", "spent_on"),
                Column("Person", "person", link=True),
                Column("Project", "project", link=True),
                Column("Task", "task", link=True),
                Column("Hours", "hours"),
                Column("Billable", "billable"),
                Column("Note", "note"),
                Column("External ID", "external_id"),
            ),
        ),
        EntityPage(
            slug="comments",
            title="Comments",
            singular="comment",
            form=forms.CommentForm,
            columns=(
                Column("Comment", "body"),
                Column("Task", "task", link=True),
                Column("Author", "author", link=True),
                Column("Written", "created_at", "created_at"),
            ),
            detail=(
                Column("Task", "task", link=True),
                Column("Author", "author", link=True),
                Column("Comment", "body"),
                Column("External ID", "external_id"),
            ),
        ),
    )
}
