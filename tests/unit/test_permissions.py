"""The role → permission matrix and the guard decorator's own checks."""

from __future__ import annotations

from itertools import product

import pytest

from app.models import Role
from app.security import PERMISSION_ROLES, permissions_of, require_permission, role_has_permission

# Written out by hand, not derived from the ranks, so a change to either side shows up here.
EXPECTED = {
    Role.VIEWER: ["integrations.read"],
    Role.EDITOR: ["integrations.read", "integrations.write"],
    Role.OPERATOR: ["integrations.read", "integrations.write", "integrations.sync"],
    Role.ADMIN: ["integrations.read", "integrations.write", "integrations.sync", "integrations.admin"],
}
PERMISSIONS = ["integrations.read", "integrations.write", "integrations.sync", "integrations.admin"]


def test_permission_roles_names_exactly_the_four_permissions():
    assert sorted(PERMISSION_ROLES) == sorted(PERMISSIONS)


@pytest.mark.parametrize(("role", "permission"), list(product(EXPECTED, PERMISSIONS)))
def test_role_has_permission_follows_the_matrix(role, permission):
    assert role_has_permission(role, permission) is (permission in EXPECTED[role])


@pytest.mark.parametrize("role", list(EXPECTED))
def test_role_has_permission_accepts_the_role_name_as_a_string(role):
    assert [p for p in PERMISSIONS if role_has_permission(role.value, p)] == EXPECTED[role]


@pytest.mark.parametrize("role", list(EXPECTED))
def test_permissions_of_lists_the_role_permissions_in_order(role):
    assert permissions_of(role) == EXPECTED[role]
    assert permissions_of(role.value) == EXPECTED[role]


@pytest.mark.parametrize("name", ["integrations.delete", "integrations", "", "INTEGRATIONS.READ"])
def test_require_permission_rejects_unknown_names_at_decoration_time(name):
    # Raised when the decorator is built, before any view is wrapped or request made.
    with pytest.raises(ValueError, match="unknown permission"):
        require_permission(name)


@pytest.mark.parametrize("permission", PERMISSIONS)
def test_require_permission_tags_the_view_with_its_permission(permission):
    @require_permission(permission)
    def view():
        return "ok"

    assert view.required_permission == permission
    assert view.__name__ == "view"
