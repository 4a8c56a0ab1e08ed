"""PostgreSQL URLs: recognising them, hiding their passwords, and connecting.

A password may come from the URL, ``PGPASSWORD`` or ``~/.pgpass``: libpq reads the
last two itself. Whatever its source, it never appears in a repr, a message or an
error: :func:`redact` masks it in the URL and :func:`scrub` removes it from any text
(psycopg's own messages included) before xetrack shows it.

>>> redact("postgresql://ana:hunter2@db:5432/exp")
'postgresql://ana:***@db:5432/exp'
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from ...errors import DatabaseError

SCHEMES = ("postgresql://", "postgres://")
INSTALL_HINT = "pip install 'xetrack[postgres]'"
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.I)


def is_url(db: Any) -> bool:
    """Whether ``db`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return isinstance(db, str) and db.lower().startswith(SCHEMES)


def _password(url: str) -> str | None:
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def redact(url: str) -> str:
    """``url`` with its password (if any) shown as ``***``; safe to print."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        if parts.password is not None:
            user = parts.username or ""
            parts = parts._replace(netloc=f"{user}:***@{host}")
        url = urlunsplit(parts)
    except ValueError:  # not even a URL: mask everything after the scheme's user part
        url = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
    return _KEYWORD_PASSWORD.sub(r"\1***", url)


_URL_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*@", re.I)


def hide_passwords(text: str) -> str:
    """``text`` with the password of every PostgreSQL URL in it shown as ``***``.

    >>> hide_passwords("No such command 'postgresql://ana:hunter2@db/exp'")
    "No such command 'postgresql://ana:***@db/exp'"
    """
    return _URL_PASSWORD.sub(r"\1***@", text)


def scrub(text: str, url: str) -> str:
    """``text`` with every password the connection may use replaced by ``***``."""
    secrets = {_password(url), os.environ.get("PGPASSWORD")}
    raw = re.search(r"://[^:/@]*:([^@]*)@", url)
    if raw:
        secrets.add(raw.group(1))  # as typed, percent-escapes and all
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return _KEYWORD_PASSWORD.sub(r"\1***", text)


def psycopg_module() -> Any:
    """psycopg 3, or an ImportError that names the pip command."""
    try:
        import psycopg
    except ImportError:
        raise ImportError(f"PostgreSQL URLs need the psycopg 3 driver: {INSTALL_HINT}") from None
    return psycopg


def connect(url: str, timeout: float = 10.0) -> Any:
    """An autocommit psycopg connection to ``url``; a failure is a DatabaseError that
    names the redacted URL and libpq's reason, never the password."""
    psycopg = psycopg_module()
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=max(1, int(timeout)), application_name="xetrack")
    except psycopg.Error as exc:
        reason = scrub(str(exc).strip(), url)
    raise DatabaseError(f"Could not connect to PostgreSQL at {redact(url)}: {reason}")


__all__ = ["SCHEMES", "INSTALL_HINT", "is_url", "redact", "hide_passwords", "scrub", "psycopg_module", "connect"]
