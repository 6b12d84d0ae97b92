class DomainError(Exception):
    """A refusal a person should read: the message is translated and safe to show."""

    def __init__(self, message, *, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.code = code
