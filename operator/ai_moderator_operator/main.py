"""`ai-moderator-operator` (also `ai-moderator operator`): runs the kopf
operator with its metrics endpoint."""

from __future__ import annotations

import argparse
import asyncio
import logging

import kopf
from prometheus_client import start_http_server

from ai_moderator_workload.logs import configure_logging

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ai-moderator-operator", description="Run the Kubernetes operator.")
    parser.add_argument("--namespace", "-n", action="append", default=[], help="watch only these (repeatable)")
    parser.add_argument("--metrics-port", type=int, default=8080)
    parser.add_argument("--liveness", default="http://0.0.0.0:8081/healthz")
    parser.add_argument("--peering", default=None, help="kopf peering name (leader election with >1 replica)")
    parser.add_argument("--json-logs", action="store_true", help="JSON log lines (set in containers)")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return run(build_parser().parse_args(argv))
    except KeyboardInterrupt:
        return 130


def run(args: argparse.Namespace) -> int:
    from . import handlers  # noqa: F401 - registers the handlers

    configure_logging("INFO", json_logs=args.json_logs)
    # kopf logs every handler call at INFO; our own log lines say what matters.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    if args.metrics_port:
        start_http_server(args.metrics_port)
    namespaces = list(args.namespace or [])
    log.info("operator starting", extra={"namespaces": namespaces or "all", "peering": args.peering})
    settings = kopf.OperatorSettings()
    # With namespaces named exactly (no globs) there is nothing to discover:
    # kopf would otherwise list and watch every namespace, which the
    # namespaced Role does not (and need not) allow. CRDs are then read once
    # at start.
    settings.scanning.disabled = bool(namespaces) and not any(set(n) & set("*?[!") for n in namespaces)
    asyncio.run(kopf.operator(
        settings=settings,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=args.liveness or None,
        standalone=args.peering is None,
        peering_name=args.peering,
    ))
    return 0
