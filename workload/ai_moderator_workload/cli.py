"""The `ai-moderator` command. Imports of each subcommand are deferred so the
operator image, which lacks the workload's dependencies, can run `operator`."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .logs import configure_logging

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from .engine.policy import Policy
    from .settings import Settings


def parse_duration(value: str) -> timedelta:
    """'90d', '12h', '30m' or '45s'."""
    match = re.fullmatch(r"\s*(\d+)\s*([dhms])\s*", value)
    if not match:
        raise argparse.ArgumentTypeError(f"{value!r} is not a duration like 90d, 12h, 30m or 45s")
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(**{{"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}[unit]: amount})


def instant(value: str) -> datetime:
    """An ISO 8601 date or time: 2026-11-01, 2026-11-01T12:00:00+01:00; UTC without a zone."""
    from .db.models import as_utc

    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date or time like 2026-11-01 or "
                                         "2026-11-01T12:00:00Z") from None


def byte_size(value: str) -> int:
    """Bytes, plain or with a suffix: 1048576, 500M, 2G, 1Gi."""
    from .settings import parse_bytes

    try:
        return parse_bytes(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _settings() -> Any:
    from .settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    return settings


def cmd_serve(args: argparse.Namespace) -> int:
    import tempfile

    settings = _settings()
    workers = args.workers or settings.api_workers
    if workers > 1 and settings.embedded:
        print("the embedded mode (no REDIS_URL) runs one process; ignoring --workers", file=sys.stderr)
        workers = 1
    if workers > 1:
        # Each process counts in files here; /metrics sums them (prometheus_client multiprocess mode).
        # Set before prometheus_client is imported by the app.
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="ai-moderator-metrics-"))
    import uvicorn

    uvicorn.run("ai_moderator_workload.api.main:create_app", factory=True, host=args.host, port=args.port,
                workers=workers, log_config=None, access_log=False, loop="uvloop", http="httptools",
                timeout_graceful_shutdown=20)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from .worker import run_worker

    run_worker(_settings(), args.concurrency, args.metrics_port)
    return 0


def cmd_migrate(_: argparse.Namespace) -> int:
    from .db.migrate import migrate

    revision = migrate(_settings())
    print(f"schema at revision {revision}")
    return 0


def cmd_cleanup(args: argparse.Namespace) -> int:
    from . import store
    from .db.session import session_factory

    deleted = store.cleanup(session_factory(_settings()), args.older_than, args.batch_size)
    print(f"deleted {deleted} content items older than {args.older_than.days}d")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from .backup import backup, prune

    print(f"backup written to {backup(_settings().database_url, args.to)}")
    if args.keep is not None or args.keep_days is not None:
        for old in prune(args.to, args.keep, args.keep_days):
            print(f"deleted old backup {old}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from .backup import restore

    settings = _settings()
    restore(settings.database_url, args.source)
    print(f"restored {args.source}")
    if args.migrate:
        from .db.migrate import migrate

        # A backup from an older version holds an older schema: bring it to what this image runs.
        print(f"schema at revision {migrate(settings)}")
    return 0


def cmd_verify_backup(args: argparse.Namespace) -> int:
    from .backup import verify

    settings = _settings()
    scratch = settings.scratch_database_url.get_secret_value() if settings.scratch_database_url else None
    found = verify(settings.database_url, args.source, scratch)
    print(json.dumps({"verified": True, **found}, default=str))
    return 0


def _refused_callback_url(url: str | None, settings: Settings) -> str | None:
    """Why a key's default callback URL is refused, or None."""
    if url is None:
        return None
    from .callbacks import CallbackRefused, check_url

    try:
        check_url(url, settings)
    except CallbackRefused as exc:
        return f"--callback-url {exc}"
    return None


def cmd_apikey(args: argparse.Namespace) -> int:
    from .db.session import session_scope
    from .policies import UnknownName

    settings = _settings()
    url = getattr(args, "callback_url", None)
    # `apikey update --callback-url ''` clears the URL: nothing to check.
    refused = None if args.action == "update" and url == "" else _refused_callback_url(url, settings)
    if refused:
        print(refused, file=sys.stderr)
        return 2
    try:
        with session_scope(settings) as session:
            return _apikey_action(args, session)
    except UnknownName as exc:
        print(f"--policy: {exc} (create it with PUT /api/v1/policies/{exc.name})", file=sys.stderr)
        return 2


def _apikey_action(args: argparse.Namespace, session: Session) -> int:
    from . import apikeys

    if args.action == "create":
        key, token = apikeys.create_key(session, args.name, is_admin=args.admin,
                                        rate_limit_per_minute=args.rate_limit,
                                        daily_storage_quota_bytes=args.daily_quota,
                                        callback_url=args.callback_url, policy=args.policy)
        print(json.dumps({**apikeys.describe(key), "key": token, "callback_secret": key.callback_secret}, indent=2))
        print("Store the key and its callback secret now: they are not shown again.", file=sys.stderr)
    elif args.action == "update":
        changes = {field: None if value == "" else value
                   for field, value in (("policy", args.policy), ("callback_url", args.callback_url))
                   if value is not None}
        updated = apikeys.update_key(session, args.key, changes)
        if updated is None:
            print(f"no active key with id or prefix {args.key}", file=sys.stderr)
            return 1
        print(json.dumps(apikeys.describe(updated), indent=2))
    elif args.action == "rotate-callback-secret":
        secret = apikeys.rotate_callback_secret(session, args.key)
        if secret is None:
            print(f"no active key with id or prefix {args.key}", file=sys.stderr)
            return 1
        print(json.dumps({"key": args.key, "callback_secret": secret}, indent=2))
        print("Store the callback secret now: it is not shown again. The old one no longer signs.", file=sys.stderr)
    elif args.action == "list":
        print(json.dumps([apikeys.describe(k) for k in apikeys.list_keys(session)], indent=2))
    elif not apikeys.revoke_key(session, args.key):
        print(f"no active key with id or prefix {args.key}", file=sys.stderr)
        return 1
    else:
        print(f"revoked {args.key}")
    return 0


def cmd_export_feedback(args: argparse.Namespace) -> int:
    from . import review
    from .db.session import session_factory

    sessions = session_factory(_settings())
    written = 0
    with (args.output.open("w", encoding="utf-8") if args.output else contextlib.nullcontext(sys.stdout)) as out:
        for example in review.export_examples(sessions, args.since, args.until):
            out.write(review.corpus_line(example) + "\n")
            written += 1
    print(f"exported {written} examples", file=sys.stderr)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import logging

    from .engine.train import train

    configure_logging("INFO", False)
    logging.getLogger("ai_moderator_workload").setLevel(logging.INFO)
    document = train(threads=args.threads, rebuild_table=not args.keep_table, cache_dir=args.cache)
    for profile, result in document["dev_quality"].items():
        print(f"{profile:9} dev mean AUPRC {result['mean_auprc']:.3f}  any-category {result['any_auprc']:.3f}")
    print(f"heads {document['heads_digest'][:12]} from corpus train {document['corpus']['train'][:12]} "
          f"dev {document['corpus']['dev'][:12]}")
    return 0


def cmd_corpus_stats(args: argparse.Namespace) -> int:
    from .engine import corpus

    corpora = [corpus.load("train"), corpus.load("dev")]
    if args.json:
        print(json.dumps([corpus.stats(c) for c in corpora], indent=2))
    else:
        print(corpus.render_stats(corpora))
    return 0


def _policy_arg(value: str | None) -> Policy:
    """A policy file, or env:NAME for YAML in an environment variable (how the
    operator's quality-gate Job hands over the candidate and serving policies)."""
    from .engine.policy import Policy, load_policy, parse_policy

    if value is None:
        return Policy()
    if value.startswith("env:"):
        return parse_policy(os.environ[value[4:]])
    return load_policy(Path(value))


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.gate or args.golden:
        return _evaluate_gate(args)
    from .engine.evaluation import PROFILES, evaluate, table

    policy = _policy_arg(args.policy)
    profiles = PROFILES if args.profile == "all" else (args.profile,)
    results = {p: evaluate(p, policy=policy) for p in profiles}
    print(json.dumps(results, indent=2) if args.json else table(results))
    return 0


def _evaluate_gate(args: argparse.Namespace) -> int:
    from .engine.gate import GoldenSetError, compact, dev_golden, gate_report, load_golden

    try:
        examples = load_golden(args.golden) if args.golden else dev_golden()
        candidate = _policy_arg(args.policy)
        baseline = _policy_arg(args.baseline_policy) if args.baseline_policy else None
    except (GoldenSetError, OSError, KeyError, ValueError) as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    report = gate_report(candidate, baseline, examples)
    if args.result_file:
        args.result_file.write_text(compact(report))
    print(json.dumps(report, indent=2) if args.json else
          f"{report['examples']} golden examples: flag rate {report['candidate']['flagRate']}, recall "
          f"{report['candidate']['recall']}, precision {report['candidate']['precision']}"
          + (f" (baseline flag rate {report['baseline']['flagRate']})" if "baseline" in report else ""))
    return 0


def cmd_operator(args: argparse.Namespace) -> int:
    # An alias of `ai-moderator-operator`: the operator's code (and kopf) is
    # imported only when it runs, and it parses its own options.
    from ai_moderator_operator.main import main as operator_main

    return operator_main(args.operator_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ai-moderator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=None,
                       help="API processes sharing the port (default $API_WORKERS or 1)")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a Celery worker on moderation_queue")
    worker.add_argument("--concurrency", type=int, default=4)
    worker.add_argument("--metrics-port", type=int, default=9100, help="0 disables the metrics endpoint")
    worker.set_defaults(func=cmd_worker)

    sub.add_parser("migrate", help="apply database migrations (safe to run concurrently)").set_defaults(
        func=cmd_migrate)

    cleanup = sub.add_parser("cleanup", help="delete content older than a retention period")
    cleanup.add_argument("--older-than", type=parse_duration, required=True, help="e.g. 90d")
    cleanup.add_argument("--batch-size", type=int, default=1000)
    cleanup.set_defaults(func=cmd_cleanup)

    bk = sub.add_parser("backup", help="pg_dump the database into a new dated gzip file")
    bk.add_argument("--to", required=True, help="directory, or s3://bucket/prefix (AWS_* environment)")
    bk.add_argument("--keep", type=int, default=None, help="keep at most this many backups there")
    bk.add_argument("--keep-days", type=int, default=None, help="delete backups older than this many days")
    bk.set_defaults(func=cmd_backup)

    rs = sub.add_parser("restore", help="restore a backup made by `backup` into DATABASE_URL")
    rs.add_argument("--from", dest="source", required=True, help="backup file path or s3://bucket/key")
    rs.add_argument("--migrate", action="store_true", help="then upgrade the restored schema to this version's")
    rs.set_defaults(func=cmd_restore)

    vb = sub.add_parser("verify-backup", help="restore the newest backup into a scratch database and check it "
                                              "(a temporary database on DATABASE_URL's server, or "
                                              "$SCRATCH_DATABASE_URL)")
    vb.add_argument("--from", dest="source", required=True, help="directory, or s3://bucket/prefix")
    vb.set_defaults(func=cmd_verify_backup)

    keys = sub.add_parser("apikey", help="manage API keys")
    key_sub = keys.add_subparsers(dest="action", required=True)
    create = key_sub.add_parser("create")
    create.add_argument("--name", required=True)
    create.add_argument("--admin", action="store_true", help="may read every key's content")
    create.add_argument("--rate-limit", type=int, default=None, help="requests per minute (default from settings)")
    create.add_argument("--daily-quota", type=byte_size, default=None, metavar="BYTES",
                        help="bytes of content stored per UTC day, e.g. 500M or 2Gi; 0 for none "
                             "(default $DAILY_STORAGE_QUOTA_BYTES)")
    create.add_argument("--callback-url", default=None, metavar="URL",
                        help="where decisions of content submitted without a callback_url are POSTed")
    create.add_argument("--policy", default=None, metavar="NAME", help="tenant policy this key's requests are "
                                                                       "decided with (default: the stack's)")
    update = key_sub.add_parser("update", help="change a key's tenant policy or default callback URL")
    update.add_argument("key", help="key id or prefix")
    update.add_argument("--policy", default=None, metavar="NAME", help="tenant policy; '' for the stack's")
    update.add_argument("--callback-url", default=None, metavar="URL", help="default callback URL; '' for none")
    key_sub.add_parser("list")
    rotate = key_sub.add_parser("rotate-callback-secret", help="print a new callback signing secret for the key")
    rotate.add_argument("key", help="key id or prefix")
    revoke = key_sub.add_parser("revoke")
    revoke.add_argument("key", help="key id or prefix")
    keys.set_defaults(func=cmd_apikey)

    ef = sub.add_parser("export-feedback", help="write reviewed and reported content as corpus JSONL (text, "
                                                "labels, register, source) for training the next model")
    ef.add_argument("--since", type=instant, required=True,
                    help="reviews and feedback from this date or time on, e.g. 2026-11-01 (UTC without a zone)")
    ef.add_argument("--until", type=instant, default=None, help="and before this one (default: no end)")
    ef.add_argument("--output", type=Path, default=None, metavar="FILE", help="default: standard output")
    ef.set_defaults(func=cmd_export_feedback)

    tr = sub.add_parser("train", help="rebuild the engine's static table and heads from the corpus "
                                      "(deterministic; writes into the installed package)")
    tr.add_argument("--threads", type=int, default=2)
    tr.add_argument("--keep-table", action="store_true", help="reuse the shipped static table")
    tr.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "ai-moderator" / "features",
                    help="window features kept between runs")
    tr.set_defaults(func=cmd_train)

    cs = sub.add_parser("corpus-stats", help="counts per category, clean and hard negatives, text lengths")
    cs.add_argument("--json", action="store_true")
    cs.set_defaults(func=cmd_corpus_stats)

    ev = sub.add_parser("evaluate", help="the engine's quality on the dev set, per profile; or, with --gate, a "
                                         "policy's flag rate, recall and precision on a golden set")
    ev.add_argument("--profile", choices=["all", "fast", "cascade", "accurate"], default="all")
    ev.add_argument("--policy", default=None, help="policy YAML file, or env:NAME to read it from a variable")
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--gate", action="store_true",
                    help="measure --policy (with its own engine profile) beside --baseline-policy on --golden "
                         "(implied by --golden)")
    ev.add_argument("--golden", type=Path, default=None,
                    help='JSONL of {"text", "expected": [categories]} (default: the image\'s dev set)')
    ev.add_argument("--baseline-policy", default=None, help="the policy serving now, to compare with")
    ev.add_argument("--result-file", type=Path, default=None,
                    help="also write the report as compact JSON here (the gate Job's termination message)")
    ev.set_defaults(func=cmd_evaluate)

    op = sub.add_parser("operator", add_help=False,
                        help="run the Kubernetes operator (same as ai-moderator-operator; --help for its options)")
    op.add_argument("operator_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    op.set_defaults(func=cmd_operator)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["operator"]:
        # Everything after it is the operator's to parse (argparse would take
        # a leading option for its own).
        return cmd_operator(argparse.Namespace(operator_args=argv[1:]))
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from .backup import failures

        if isinstance(exc, failures()):
            print(f"error: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
