"""What may name a database (`--db`, `PML_DATABASE_URL`), checked before anything is
opened or created.

Accepted:
- a PostgreSQL URL, `postgresql://…` or `postgres://…`, in libpq's syntax (checked
  here, so a bad percent-encoding is refused before any connection attempt);
- an SQLite file: `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, or a
  plain path. A path names an SQLite file when it ends in .db, .sqlite or .sqlite3,
  or when the file already exists (whatever its name; opening it then checks that it
  is one). Its folder must exist.

Everything else is refused with one line: a mistyped URL (`postgress://`, `mysql://`,
`garbage`) never becomes an empty SQLite file named after it.
"""

import re
from pathlib import Path
from urllib.parse import unquote

from pimpmyllama.errors import InvalidInputError

SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
POSTGRES_SCHEMES = ("postgresql", "postgres")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_HELP = "give a postgresql:// URL, or an SQLite file path ending in " + ", ".join(SQLITE_SUFFIXES)


def redact(url: str) -> str:
    """A connection URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def parse_target(target: str | Path, origin: str | None = None) -> str | Path:
    """The PostgreSQL URL (a str) or the SQLite file (a Path) that `target` names, or
    InvalidInputError. `origin` (e.g. "PML_DATABASE_URL") is named in the message."""
    where = f"{origin} ({redact(str(target))!r})" if origin else repr(redact(str(target)))
    if isinstance(target, str):
        scheme = _SCHEME.match(target)
        if scheme and scheme.group(1).lower() in POSTGRES_SCHEMES:
            return _postgres_url(target, where)
        if scheme and scheme.group(1).lower() == "sqlite":
            if not target.lower().startswith("sqlite:///"):
                raise InvalidInputError(f"{where}: an SQLite URL is sqlite:///PATH (four slashes for an absolute path)")
            target = unquote(target[len("sqlite:///"):])
        elif scheme:
            raise InvalidInputError(f"{where}: unsupported database URL scheme {scheme.group(1)!r}; {_HELP}")
        if not target:
            raise InvalidInputError(f"{where}: no database named; {_HELP}")
    return _sqlite_path(Path(target).expanduser(), where)


def _postgres_url(url: str, where: str) -> str:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "cannot be parsed"
        if "percent-encoded" in reason:  # libpq quotes the token, which may be part of the password
            reason = "bad percent-encoding (a % must be followed by two hex digits)"
        raise InvalidInputError(f"{where}: invalid PostgreSQL URL: {reason}") from None
    return url


def _sqlite_path(path: Path, where: str) -> Path:
    if path.is_dir():
        raise InvalidInputError(f"{where}: {path} is a folder, not an SQLite database file")
    if path.exists():
        return path
    if path.suffix.lower() not in SQLITE_SUFFIXES:
        raise InvalidInputError(f"{where}: not a database URL or SQLite file; {_HELP}")
    if not path.parent.is_dir():
        raise InvalidInputError(f"{where}: the folder {path.parent} does not exist")
    return path
