"""Domain errors. Every error the API shows is one of these, rendered as
``{"error": {"code", "message", "field"}}`` with its HTTP status."""

from __future__ import annotations


class DidhubError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class ValidationFailed(DidhubError):
    status_code = 422
    code = "validation_error"


class Unauthorized(DidhubError):
    status_code = 401
    code = "unauthorized"


class Forbidden(DidhubError):
    status_code = 403
    code = "forbidden"


class NotFound(DidhubError):
    status_code = 404
    code = "not_found"


class Conflict(DidhubError):
    status_code = 409
    code = "conflict"


class NumberUnavailable(Conflict):
    code = "number_unavailable"


class InsufficientFunds(DidhubError):
    status_code = 402
    code = "insufficient_funds"


class CarrierError(DidhubError):
    status_code = 502
    code = "carrier_error"


class PaymentDeclined(DidhubError):
    status_code = 402
    code = "payment_declined"


class PaymentPending(DidhubError):
    """The gateway didn't answer; the charge is settled later, never twice."""

    status_code = 502
    code = "payment_outcome_unknown"


class TooManyRequests(DidhubError):
    """Slow down: ``retry_after`` seconds until it is worth trying again."""

    status_code = 429
    code = "too_many_requests"

    def __init__(
        self, message: str, *, retry_after: int, field: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, field=field, code=code)
        self.retry_after = retry_after


class ServiceUnavailable(DidhubError):
    """A service didhub depends on (other than a carrier) didn't answer."""

    status_code = 503
    code = "service_unavailable"
