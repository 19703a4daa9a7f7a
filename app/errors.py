"""Domain exceptions. Services raise these; views and the API translate them."""

from __future__ import annotations

from collections.abc import Mapping


class DomainError(Exception):
    """A failure whose message is safe to show to the user as it is."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    status_code = 404

    def __init__(self, what: str = "Record") -> None:
        super().__init__(f"{what} not found.")


class Forbidden(DomainError):
    status_code = 403

    def __init__(self, message: str = "You do not have permission to do this.") -> None:
        super().__init__(message)


class Conflict(DomainError):
    status_code = 409


class PreconditionFailed(DomainError):
    """The client's ``If-Match`` names a version the record no longer has."""

    status_code = 412


class ValidationFailed(DomainError):
    """Input broke one or more rules; ``errors`` maps a field name to its messages."""

    status_code = 422

    def __init__(
        self, errors: Mapping[str, list[str] | str], message: str = "Please correct the errors below."
    ) -> None:
        super().__init__(message)
        self.errors = {k: [v] if isinstance(v, str) else list(v) for k, v in errors.items()}


class LoginThrottled(DomainError):
    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
