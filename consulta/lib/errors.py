class DomainError(Exception):
    """A refusal a person should read: the message is translated and safe to show."""

    def __init__(self, message, *, code: str = "invalid", extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        # What a client needs to act on the refusal (a socket's `error` carries it too).
        self.extra = extra or {}
