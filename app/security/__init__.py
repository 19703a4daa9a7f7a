"""Permissions, tenancy, passwords and sign-in throttling."""

from app.security.permissions import (
    PERMISSION_ROLES,
    can,
    current_role,
    login_only,
    permissions_of,
    public,
    require_permission,
    require_role,
    role_has_permission,
)
from app.security.tenancy import current_org, load_current_org, switch_org

__all__ = [
    "PERMISSION_ROLES",
    "can",
    "current_org",
    "current_role",
    "load_current_org",
    "login_only",
    "permissions_of",
    "public",
    "require_permission",
    "require_role",
    "role_has_permission",
    "switch_org",
]
