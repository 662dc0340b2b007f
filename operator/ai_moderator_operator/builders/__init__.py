"""Pure functions from a ModerationStack to the manifests of its children."""

from __future__ import annotations

from .app import (
    api_deployment,
    api_hpa,
    api_ingress,
    api_pdb,
    api_service,
    app_secret,
    policy_config_map,
    policy_yaml,
    service_monitor,
    shadow_policy_yaml,
    spec_policy_yaml,
    worker_deployment,
    worker_scaler,
)
from .common import Context, Manifest
from .data import network_policy, postgres, redis
from .jobs import (
    S3_CREDENTIAL_KEYS,
    backup_args,
    backup_cronjob,
    backup_location,
    backup_now_job,
    backup_pvc,
    cleanup_cronjob,
    final_backup_job,
    migration_job,
    quality_gate_job,
    restore_job,
    verify_cronjob,
)

__all__ = ["Context", "Manifest", "S3_CREDENTIAL_KEYS", "app_secret", "backup_args",
           "backup_location", "backup_now_job", "desired_children", "final_backup_job", "migration_job",
           "policy_yaml", "quality_gate_job", "restore_job", "shadow_policy_yaml", "spec_policy_yaml",
           "verify_cronjob"]


def desired_children(ctx: Context) -> list[Manifest]:
    """Every child except the generated Secret (made once) and the migration
    Job (made by the rollout logic). The app itself is only included once a
    version has been migrated and rolled out."""
    children: list[Manifest | None] = [
        policy_config_map(ctx), *postgres(ctx), *redis(ctx), network_policy(ctx),
        api_service(ctx), api_pdb(ctx), api_hpa(ctx), api_ingress(ctx), service_monitor(ctx),
        backup_pvc(ctx),
    ]
    version = ctx.rolled_out_version
    if version is not None:
        children += [api_deployment(ctx, version), worker_deployment(ctx, version), worker_scaler(ctx),
                     cleanup_cronjob(ctx, version), backup_cronjob(ctx, version), verify_cronjob(ctx, version)]
    return [c for c in children if c is not None]
