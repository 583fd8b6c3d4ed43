"""What every service's rules share: how a refusal is told apart from a failure."""


class RuleViolation(Exception):
    """A business rule refused the action; the message says why.

    The same input is always refused the same way: over HTTP it is a 409, and a consumer
    dead-letters such a message at once instead of retrying it.
    """


class NamesAField(Exception):
    """A refusal that names the field at fault and why (an HTTP 422 `{"field", "reason"}`)."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason
