"""Roles, permissions and the decorators that guard every view.

Every view carries exactly one of ``@public``, ``@login_only`` or
``@require_permission(...)``/``@require_role(...)``. The decorators also tag
the view function, so a test can walk the URL map and prove each rule.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import abort, g
from flask_login import current_user

from app.errors import Forbidden
from app.extensions import login_manager
from app.models import Role

PERMISSION_ROLES: dict[str, Role] = {
    "integrations.read": Role.VIEWER,
    "integrations.write": Role.EDITOR,
    "integrations.sync": Role.OPERATOR,
    "integrations.admin": Role.ADMIN,
}

NO_ORGANISATION = (
    "You are not an active member of any organisation. Ask an admin of your organisation to reactivate you, "
    "or sign out."
)


def role_has_permission(role: str | Role, permission: str) -> bool:
    return Role(role).rank >= PERMISSION_ROLES[permission].rank


def permissions_of(role: str | Role) -> list[str]:
    return [p for p in PERMISSION_ROLES if role_has_permission(role, p)]


def current_role() -> Role | None:
    membership = g.get("membership")
    return Role(membership.role) if membership is not None else None


def can(permission: str) -> bool:
    role = current_role()
    return role is not None and role_has_permission(role, permission)


def require_permission(permission: str) -> Callable:
    if permission not in PERMISSION_ROLES:
        raise ValueError(f"unknown permission {permission!r}")

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if g.get("membership") is None:
                # Deactivated in every organisation, possibly mid-session: say so rather than blame the role.
                raise Forbidden(NO_ORGANISATION)
            if not can(permission):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_permission = permission
        return wrapped

    return decorator


def require_role(role: Role) -> Callable:
    """Shorthand for the permission that ``role`` is the least role to hold."""
    permission = next(p for p, r in PERMISSION_ROLES.items() if r == role)
    return require_permission(permission)


def login_only(view: Callable) -> Callable:
    """Signed-in users with or without an organisation (sign-out, switching orgs)."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        return view(*args, **kwargs)

    wrapped.login_only = True
    return wrapped


def public(view: Callable) -> Callable:
    view.public = True
    return view
