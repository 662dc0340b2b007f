"""Writes the Grafana dashboards shipped in the Helm chart
(charts/ai-moderator-operator/files/dashboards/). Run after changing panels."""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "charts" / "ai-moderator-operator" / "files" / "dashboards"


def panel(title: str, exprs: list[tuple[str, str]], unit: str = "short", kind: str = "timeseries") -> dict:
    return {"type": kind, "title": title, "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": chr(65 + i), "expr": expr, "legendFormat": legend}
                        for i, (expr, legend) in enumerate(exprs)]}


def dashboard(uid: str, title: str, panels: list[dict]) -> dict:
    for i, p in enumerate(panels):
        p["id"] = i + 1
        p["gridPos"] = {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)}
    return {"uid": uid, "title": title, "tags": ["ai-moderator"], "schemaVersion": 39, "version": 1,
            "time": {"from": "now-6h", "to": "now"}, "refresh": "30s",
            "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                     "label": "Data source"}]},
            "panels": panels}


DASHBOARDS = {
    "operator": dashboard("ai-moderator-operator", "ai-moderator / Operator", [
        panel("Reconcile rate by result", [("sum by (result) (rate(controller_runtime_reconcile_total[5m]))", "{{result}}")], "ops"),
        panel("Reconcile errors", [("sum(rate(controller_runtime_reconcile_errors_total[5m]))", "errors/s")], "ops"),
        panel("Reconcile latency", [
            ("histogram_quantile(0.5, sum by (le) (rate(controller_runtime_reconcile_time_seconds_bucket[5m])))", "p50"),
            ("histogram_quantile(0.99, sum by (le) (rate(controller_runtime_reconcile_time_seconds_bucket[5m])))", "p99")], "s"),
        panel("Stacks by phase", [("sum by (phase) (ai_moderator_stacks)", "{{phase}}")]),
        panel("Last backup age", [("time() - ai_moderator_last_backup_success_timestamp_seconds", "{{namespace}}/{{stack}}")], "s"),
        panel("Quality gate: flag rate on the golden set", [
            ("ai_moderator_quality_gate_flag_rate", "candidate {{namespace}}/{{stack}}"),
            ("ai_moderator_quality_gate_baseline_flag_rate", "serving {{namespace}}/{{stack}}")], "percentunit"),
        panel("Quality gate passed", [("ai_moderator_quality_gate_passed", "{{namespace}}/{{stack}}")]),
        panel("Migration duration (p90)", [
            ("histogram_quantile(0.9, sum by (le) (rate(ai_moderator_migration_duration_seconds_bucket[1h])))", "p90")], "s"),
    ]),
    "api": dashboard("ai-moderator-api", "ai-moderator / API", [
        panel("Request rate", [("sum by (route) (rate(http_requests_total[5m]))", "{{route}}")], "reqps"),
        panel("Latency", [
            (f"histogram_quantile({q}, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))", f"p{int(q * 100)}")
            for q in (0.5, 0.95, 0.99)], "s"),
        panel("Error rate", [('sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))',
                              "5xx share")], "percentunit"),
        panel("Status codes", [("sum by (status) (rate(http_requests_total[5m]))", "{{status}}")], "reqps"),
        panel("Flagged decisions by category", [("sum by (category) (rate(moderation_decisions_total[5m]))", "{{category}}")], "ops"),
        panel("Texts moderated", [("sum by (outcome) (rate(moderation_texts_total[5m]))", "{{outcome}}")], "ops"),
        panel("Shadow policy against the live one", [
            ("sum by (outcome) (rate(moderation_shadow_texts_total[5m]))", "{{outcome}}")], "ops"),
    ]),
    "workers": dashboard("ai-moderator-workers", "ai-moderator / Workers", [
        panel("Active tasks", [("sum(celery_active_tasks)", "active")]),
        panel("Queue depth", [("max(celery_queue_length)", "moderation_queue")]),
        panel("Task success rate", [('sum(rate(celery_tasks_total{state="success"}[5m])) / sum(rate(celery_tasks_total[5m]))',
                                     "success")], "percentunit"),
        panel("Task latency", [
            (f"histogram_quantile({q}, sum by (le) (rate(celery_task_duration_seconds_bucket[5m])))", f"p{int(q * 100)}")
            for q in (0.5, 0.95, 0.99)], "s"),
        panel("Re-queued by the sweeper", [("sum(rate(moderation_sweeper_requeued_total[15m]))", "requeued/s")], "ops"),
    ]),
    "health": dashboard("ai-moderator-health", "ai-moderator / Application health", [
        panel("Database connection pool", [("sum(db_connection_pool_used)", "used"), ("sum(db_connection_pool_size)", "size")]),
        panel("Rate limiter", [("sum(rate(rate_limit_rejections_total[5m]))", "429/s"),
                               ("sum(rate(rate_limiter_errors_total[5m]))", "limiter errors/s")], "ops"),
        panel("Worker count", [('count(up{job=~".*worker.*"} == 1)', "workers")]),
        panel("Queue publish errors", [("sum(rate(queue_publish_errors_total[5m]))", "errors/s")], "ops"),
        panel("Micro-batch size", [("histogram_quantile(0.5, sum by (le) (rate(moderation_batch_size_bucket[5m])))", "p50")]),
    ]),
}

if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, board in DASHBOARDS.items():
        (OUT / f"{name}.json").write_text(json.dumps(board, indent=2) + "\n")
        print(f"wrote {OUT / name}.json")
