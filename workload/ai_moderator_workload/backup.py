"""`ai-moderator backup` / `restore`: pg_dump to a gzip file and back, as the
seed's backup script did, with the password passed in the environment (never
on the command line) and files written atomically."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy.engine import make_url

CHUNK = 1 << 20


class BackupError(RuntimeError):
    pass


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


def backup_name(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"db-backup-{now.strftime('%Y%m%dT%H%M%SZ')}.sql.gz"


def backup(database_url: str, target: Path) -> Path:
    """Dump the database into `target` (a file, or a directory to name one in)."""
    if target.is_dir():
        target = target / backup_name()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    cmd = [_tool("pg_dump"), "--clean", "--if-exists", "--no-owner", "--no-privileges"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=libpq_env(database_url)) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        with gzip.open(partial, "wb", compresslevel=6) as out:
            shutil.copyfileobj(proc.stdout, out, CHUNK)
        stderr = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed ({proc.returncode}): {stderr.strip()}")
    partial.replace(target)
    return target


def prune(directory: Path, keep: int | None, keep_days: int | None, now: datetime | None = None) -> list[Path]:
    """Apply retention to the backups in `directory`: at most `keep` newest,
    none older than `keep_days`. The newest backup is always kept."""
    now = now or datetime.now(timezone.utc)
    backups = sorted(directory.glob("db-backup-*.sql.gz"), key=lambda p: p.name, reverse=True)
    doomed: list[Path] = []
    for index, path in enumerate(backups):
        if index == 0:
            continue
        too_many = keep is not None and index >= keep
        try:
            taken = datetime.strptime(path.name, "db-backup-%Y%m%dT%H%M%SZ.sql.gz").replace(tzinfo=timezone.utc)
        except ValueError:
            continue  # not one of ours
        too_old = keep_days is not None and now - taken > timedelta(days=keep_days)
        if too_many or too_old:
            doomed.append(path)
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def restore(database_url: str, source: Path) -> None:
    """Replay a backup into the database in one transaction: all or nothing."""
    if not source.is_file():
        raise BackupError(f"backup file {source} does not exist")
    cmd = [_tool("psql"), "--quiet", "--no-psqlrc", "--single-transaction", "-v", "ON_ERROR_STOP=1", "--file=-"]
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=libpq_env(database_url)) as proc:
        assert proc.stdin is not None and proc.stderr is not None
        try:
            with gzip.open(source, "rb") as dump:
                shutil.copyfileobj(dump, proc.stdin, CHUNK)
        except BrokenPipeError:
            pass  # psql stopped early; its stderr says why
        except (OSError, EOFError) as exc:
            proc.kill()
            raise BackupError(f"cannot read backup {source}: {exc}") from exc
        finally:
            proc.stdin.close()
        stderr = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        raise BackupError(f"restore failed ({proc.returncode}): {stderr.strip()}")
