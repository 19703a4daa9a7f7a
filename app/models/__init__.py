"""Every model, re-exported: the one import path the rest of the code uses."""

from app.models.access import ApiKey, OAuthAuthorizationCode, OAuthClient, OAuthToken
from app.models.audit import AuditEvent
from app.models.base import Base, utcnow
from app.models.clients import Client
from app.models.exports import ExportJob
from app.models.imports import ImportJob, ImportRowChange, ImportRowError, ImportStatus, MappingPreset
from app.models.jobs import TERMINAL_STATUSES, BackgroundJob, JobStatus
from app.models.orgs import ROLE_ORDER, Membership, Organization, Role, User
from app.models.people import Person
from app.models.projects import PRIORITIES, PROJECT_STATUSES, TASK_STATUSES, Project, Task
from app.models.sso import GroupRoleMapping, IdentityProvider, SsoProtocol
from app.models.work import Assignment, Comment, TimeEntry

__all__ = [
    "PRIORITIES",
    "PROJECT_STATUSES",
    "ROLE_ORDER",
    "TASK_STATUSES",
    "TERMINAL_STATUSES",
    "ApiKey",
    "Assignment",
    "AuditEvent",
    "BackgroundJob",
    "Base",
    "Client",
    "Comment",
    "ExportJob",
    "GroupRoleMapping",
    "IdentityProvider",
    "ImportJob",
    "ImportRowChange",
    "ImportRowError",
    "ImportStatus",
    "JobStatus",
    "MappingPreset",
    "Membership",
    "OAuthAuthorizationCode",
    "OAuthClient",
    "OAuthToken",
    "Organization",
    "Person",
    "Project",
    "Role",
    "SsoProtocol",
    "Task",
    "TimeEntry",
    "User",
    "utcnow",
]
