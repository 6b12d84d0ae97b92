"""Patient imports: a file is read (reader), checked row by row against the registry (plan)
and, once confirmed, applied in one transaction (services)."""
