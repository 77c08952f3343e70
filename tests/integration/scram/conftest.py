"""A real PostgreSQL for the SCRAM verifier login test."""
from pg_server import pg_server  # noqa: F401  (pytest fixture)

__all__ = ["pg_server"]
