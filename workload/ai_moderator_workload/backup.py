"""`ai-moderator backup` / `restore` / `verify-backup`: pg_dump to gzip files
and back, into a directory or S3-compatible object storage. The password goes to the client tools in the environment
(never on a command line); a backup appears only once it is complete."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol

from sqlalchemy.engine import make_url

CHUNK = 1 << 20
NAME_FORMAT = "db-backup-%Y%m%dT%H%M%SZ.sql.gz"


class BackupError(RuntimeError):
    pass


def failures() -> tuple[type[BaseException], ...]:
    """Errors that end a backup command with a message rather than a traceback."""
    try:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        return (BackupError,)
    return (BackupError, Boto3Error, BotoCoreError, ClientError)


def libpq_env(database_url: str) -> dict[str, str]:
    """PG* variables for the client tools, from a SQLAlchemy URL."""
    url = make_url(database_url)
    if not url.drivername.startswith("postgresql"):
        raise BackupError(f"backup and restore need PostgreSQL; DATABASE_URL uses {url.drivername}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    pairs = {"PGHOST": url.host, "PGPORT": url.port, "PGUSER": url.username, "PGPASSWORD": url.password,
             "PGDATABASE": url.database}
    env.update({k: str(v) for k, v in pairs.items() if v is not None})
    return env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found on PATH (install the PostgreSQL client)")
    return found


def major_version(text: str) -> int:
    """The major version in `pg_dump --version` or `SHOW server_version` output."""
    match = re.search(r"\d+", text)
    if match is None:
        raise BackupError(f"cannot read a PostgreSQL version from {text!r}")
    return int(match.group(0))


def check_client_version(client: str, server: str) -> None:
    """pg_dump refuses a newer server half-way; say so before starting, plainly."""
    if major_version(server) > major_version(client):
        raise BackupError(f"the PostgreSQL server is version {major_version(server)}, newer than this image's "
                          f"pg_dump {major_version(client)}: use an image whose PostgreSQL client is at least "
                          f"{major_version(server)}")


def _ensure_client_can_dump(database_url: str) -> None:
    env = libpq_env(database_url)
    client = subprocess.run([_tool("pg_dump"), "--version"], capture_output=True, text=True, env=env, check=True)
    server = subprocess.run([_tool("psql"), "-XAtc", "SHOW server_version"], capture_output=True, text=True, env=env)
    if server.returncode == 0:  # otherwise pg_dump fails next with the connection error itself
        check_client_version(client.stdout, server.stdout)


def backup_name(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime(NAME_FORMAT)


def taken_at(name: str) -> datetime | None:
    """When a backup was taken, from its name (None: not one of ours)."""
    try:
        return datetime.strptime(name, NAME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


class Store(Protocol):
    """Where backups live: a directory or an S3 bucket prefix."""

    def names(self) -> list[str]: ...
    def write(self, name: str, stream: IO[bytes]) -> str: ...
    def open(self, name: str) -> IO[bytes]: ...
    def delete(self, name: str) -> None: ...


@dataclass
class DirectoryStore:
    path: Path

    def names(self) -> list[str]:
        return sorted(p.name for p in self.path.glob("*") if p.is_file()) if self.path.is_dir() else []

    def write(self, name: str, stream: IO[bytes]) -> str:
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.path / name
        partial = target.with_name(name + ".partial")
        try:
            with partial.open("wb") as out:
                shutil.copyfileobj(stream, out, CHUNK)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(target)
        return str(target)

    def open(self, name: str) -> IO[bytes]:
        source = self.path / name
        if not source.is_file():
            raise BackupError(f"backup file {source} does not exist")
        return source.open("rb")

    def delete(self, name: str) -> None:
        (self.path / name).unlink(missing_ok=True)


@dataclass
class S3Store:
    """A bucket and key prefix; endpoint, region and credentials come from the
    standard AWS_* environment variables (AWS_ENDPOINT_URL for S3-compatible
    services such as MinIO or Ceph)."""

    bucket: str
    prefix: str
    client: Any

    @classmethod
    def from_url(cls, url: str) -> S3Store:
        import boto3
        from botocore.config import Config

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise BackupError(f"{url!r} names no bucket; use s3://bucket/prefix")
        # Path-style addressing works with every S3-compatible server.
        config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"})
        return cls(bucket, prefix.strip("/"), boto3.client("s3", config=config))

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def names(self) -> list[str]:
        found: list[str] = []
        start = self._key("")
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start):
            found += [obj["Key"][len(start):] for obj in page.get("Contents", [])
                      if "/" not in obj["Key"][len(start):]]
        return sorted(found)

    def write(self, name: str, stream: IO[bytes]) -> str:
        # Multipart upload: an error while reading aborts it, so no partial object is left.
        self.client.upload_fileobj(stream, self.bucket, self._key(name))
        return f"s3://{self.bucket}/{self._key(name)}"

    def open(self, name: str) -> IO[bytes]:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"]
        except ClientError as exc:
            raise BackupError(f"cannot read s3://{self.bucket}/{self._key(name)}: {exc}") from exc

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(name))


def store_for(location: str) -> Store:
    return S3Store.from_url(location) if location.startswith("s3://") else DirectoryStore(Path(location))


def split_location(location: str) -> tuple[Store, str]:
    """A backup's location (path or s3:// URL) as its store and name."""
    parent, _, name = location.rstrip("/").rpartition("/")
    if not name:
        raise BackupError(f"{location!r} does not name a backup file")
    return store_for(parent or "."), name


class _CompressedDump:
    """A readable stream of `pg_dump | gzip` that raises at its end if pg_dump
    failed, so a store never keeps a truncated backup."""

    def __init__(self, database_url: str) -> None:
        cmd = [_tool("pg_dump"), "--clean", "--if-exists", "--no-owner", "--no-privileges"]
        # stderr to a file, not a pipe: nobody reads it until the end, and a full pipe would stall pg_dump.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close(), after pg_dump exits
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._stderr,
                                      env=libpq_env(database_url))
        self._zip = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: gzip framing
        self._pending = b""
        self._done = False

    def read(self, size: int = -1) -> bytes:
        assert self._proc.stdout is not None
        while not self._done and (size < 0 or len(self._pending) < size):
            chunk = self._proc.stdout.read(CHUNK)
            if chunk:
                self._pending += self._zip.compress(chunk)
                continue
            self._pending += self._zip.flush()
            self._done = True
            self._finish()
        if size < 0:
            size = len(self._pending)
        out, self._pending = self._pending[:size], self._pending[size:]
        return out

    def _finish(self) -> None:
        if self._proc.wait() != 0:
            self._stderr.seek(0)
            stderr = self._stderr.read().decode(errors="replace")
            raise BackupError(f"pg_dump failed ({self._proc.returncode}): {stderr.strip()}")

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._stderr.close()


def backup(database_url: str, location: str) -> str:
    """Dump the database into a new backup in `location` (a directory or an
    s3://bucket/prefix URL); returns where it went."""
    store = store_for(location)
    _ensure_client_can_dump(database_url)
    dump = _CompressedDump(database_url)
    try:
        return store.write(backup_name(), dump)  # type: ignore[arg-type]
    finally:
        dump.close()


def expired(names: list[str], keep: int | None, keep_days: int | None, now: datetime | None = None) -> list[str]:
    """The backups retention removes: beyond the `keep` newest, or older than
    `keep_days`. The newest backup is always kept; other files are never touched."""
    now = now or datetime.now(UTC)
    ours = sorted(((n, t) for n in names if (t := taken_at(n)) is not None), reverse=True)
    return [name for index, (name, taken) in enumerate(ours) if index > 0 and (
        (keep is not None and index >= keep) or (keep_days is not None and now - taken > timedelta(days=keep_days)))]


def prune(location: str, keep: int | None, keep_days: int | None, now: datetime | None = None) -> list[str]:
    store = store_for(location)
    doomed = expired(store.names(), keep, keep_days, now)
    for name in doomed:
        store.delete(name)
    return doomed


def latest(location: str) -> str:
    """The name of the newest backup in `location`."""
    ours = [n for n in store_for(location).names() if taken_at(n) is not None]
    if not ours:
        raise BackupError(f"no backups in {location}")
    return max(ours)


def _first_error(stderr: str) -> str:
    """psql's first ERROR line only: its LINE and CONTEXT lines quote the
    dump, i.e. stored content, which must not end up in logs or status."""
    for line in stderr.splitlines():
        if "ERROR:" in line:
            return line.strip()[:300]
    return stderr.strip().splitlines()[-1][:300] if stderr.strip() else "no error output"


def restore(database_url: str, source: str) -> None:
    """Replay a backup (path or s3:// URL) into the database in one
    transaction: all or nothing."""
    store, name = split_location(source)
    cmd = [_tool("psql"), "--quiet", "--no-psqlrc", "--single-transaction", "-v", "ON_ERROR_STOP=1", "--file=-"]
    # psql's stderr (a NOTICE per dropped-if-exists object) goes to a file: a full pipe would stall it.
    with store.open(name) as raw, tempfile.TemporaryFile() as stderr_file, subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr_file,
            env=libpq_env(database_url)) as proc:
        assert proc.stdin is not None
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as dump:
                shutil.copyfileobj(dump, proc.stdin, CHUNK)
        except BrokenPipeError:
            pass  # psql stopped early; its stderr says why
        except (OSError, EOFError) as exc:
            proc.kill()
            raise BackupError(f"cannot read backup {source}: {exc}") from exc
        finally:
            proc.stdin.close()
        proc.wait()
        stderr_file.seek(0)
        stderr = stderr_file.read().decode(errors="replace")
    if proc.returncode != 0:
        raise BackupError(f"restore failed ({proc.returncode}): {_first_error(stderr)}")


@contextmanager
def scratch_database(database_url: str) -> Iterator[str]:
    """A temporary database on the same server (the user needs CREATEDB),
    dropped afterwards whatever happens."""
    import psycopg

    url = make_url(database_url)
    name = f"{url.database or 'moderation'}_verify_{datetime.now(UTC):%Y%m%d%H%M%S}"[:63]
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def verify(database_url: str, location: str, scratch_url: str | None = None) -> dict[str, Any]:
    """Restore the newest backup in `location` into a scratch database and
    check that it holds a migrated schema; returns what was found."""
    from sqlalchemy import create_engine, inspect, text

    name = latest(location)
    source = f"{location.rstrip('/')}/{name}"

    def check(url: str) -> dict[str, Any]:
        restore(url, source)
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                tables = set(inspect(conn).get_table_names())
                if "alembic_version" not in tables:
                    raise BackupError(f"{name} restored, but it holds no schema version (alembic_version missing)")
                revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
                rows = {t: int(conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one())
                        for t in sorted(tables - {"alembic_version"})}
        finally:
            engine.dispose()
        return {"backup": source, "taken_at": taken_at(name), "revision": revision, "rows": rows}

    if scratch_url:
        return check(scratch_url)
    with scratch_database(database_url) as url:
        return check(url)
