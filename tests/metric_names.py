"""Metric names used by the shipped alert rules and dashboards."""

from __future__ import annotations

import json
import re

from kube import ROOT

CHART = ROOT / "charts" / "ai-moderator-operator"
RULES = CHART / "files" / "prometheus-rules.yaml"
NOT_METRICS = {"sum", "rate", "by", "le", "histogram_quantile", "time", "on", "max", "count", "up", "job", "status",
               "route", "result", "phase", "category", "outcome", "state", "controller", "namespace", "stack", "pod"}


def used_metric_names() -> set[str]:
    exprs = [RULES.read_text()]
    for board in (CHART / "files" / "dashboards").glob("*.json"):
        exprs += [t["expr"] for p in json.loads(board.read_text())["panels"] for t in p["targets"]]
    names: set[str] = set()
    for expr in exprs:
        for word in re.findall(r"\b([a-z_][a-z0-9_]*)\b(?=\s*[{\[)/<>*+-]|\s*$)", expr):
            if word not in NOT_METRICS and "_" in word:
                names.add(re.sub(r"_(bucket|sum|count)$", "", word))
    return names
