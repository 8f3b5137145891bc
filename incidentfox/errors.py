"""Errors written for the people who see them. Each carries the HTTP status it maps to."""

from __future__ import annotations

from typing import Any


class UserFacingError(Exception):
    """An error whose ``message`` is safe and useful to show a user as-is."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or {}

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class BadRequest(UserFacingError):
    status = 400
    code = "bad_request"


class Unauthorized(UserFacingError):
    status = 401
    code = "unauthorized"


class Forbidden(UserFacingError):
    status = 403
    code = "forbidden"


class NotFound(UserFacingError):
    status = 404
    code = "not_found"


class Conflict(UserFacingError):
    status = 409
    code = "conflict"


class PreconditionFailed(UserFacingError):
    status = 412
    code = "precondition_failed"


class PayloadTooLarge(UserFacingError):
    status = 413
    code = "payload_too_large"


class Unavailable(UserFacingError):
    """A dependency (Slack, the database) could not answer; the same request may work later."""

    status = 503
    code = "unavailable"
