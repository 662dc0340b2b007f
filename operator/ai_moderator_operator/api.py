"""The ModerationStack API (moderation.ai-moderator.io/v1alpha1): spec and
status as pydantic models. The CRD schema in crds/ is generated from these
(`python -m ai_moderator_operator.crdgen`), so the descriptions below are the
API reference that `kubectl explain` shows.

Defaults live here, not in the CRD: the API server then stores exactly what
the user wrote, which keeps GitOps tools from seeing permanent drift."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ai_moderator_workload.engine.categories import Category
from ai_moderator_workload.engine.policy import Policy

from .maintenance import DURATION_REGEX
from .quantity import quantity

GROUP = "moderation.ai-moderator.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ModerationStack"
PLURAL = "moderationstacks"



def _cron_field(number: str, names: str = "", question: bool = False) -> str:
    """One field of a cron expression as Kubernetes' parser reads it: lists of
    `*`, values and ranges within the field's bounds, each with an optional step."""
    value = f"(?:{number}|(?i:{names}))" if names else f"(?:{number})"
    element = rf"(?:\*{'|[?]' if question else ''}|{value}(?:-{value})?)(?:/[0-9]+)?"
    return rf"{element}(?:,{element})*"


# A standard 5-field cron expression (minute 0-59, hour 0-23, day of month
# 1-31, month 1-12 or JAN-DEC, day of week 0-7 or SUN-SAT) or an @-macro, as
# Kubernetes CronJobs accept. Checked by the API server (clear message) and
# again here, so "99 3 * * *" is refused at admission, not by the CronJob.
CRON_REGEX = ("^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|"
              + r"\s+".join((_cron_field("[0-5]?[0-9]"), _cron_field("[01]?[0-9]|2[0-3]"),
                              _cron_field("0?[1-9]|[12][0-9]|3[01]", question=True),
                              _cron_field("0?[1-9]|1[0-2]", "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"),
                              _cron_field("[0-7]", "SUN|MON|TUE|WED|THU|FRI|SAT", question=True)))
              + ")$")
CRON_MESSAGE = 'must be a 5-field cron expression such as "0 3 * * *" (minute hour day month weekday) or @daily'


def _check_cron(value: str) -> str:
    if not re.match(CRON_REGEX, value.strip()):
        raise ValueError(f"{value!r} {CRON_MESSAGE}")
    return value


TimeZone = Annotated[str | None, Field(
    min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$",
    description="IANA time zone of the schedules, e.g. Europe/Berlin (the controller manager's zone, "
                "usually UTC, when unset).")]


@dataclass(frozen=True)
class Rule:
    """A cross-field rule, stated twice from one place: in CEL for the API
    server (rejected at admission) and in Python for parse_spec, so both
    refuse exactly the same specs with the same message."""

    cel: str
    message: str
    holds: Callable[[Any], bool]


def _cel_rules(schema: dict[str, Any], cls: type) -> None:
    rules: tuple[Rule, ...] = getattr(cls, "rules", ())
    if rules:
        schema["x-kubernetes-validations"] = [{"rule": r.cel, "message": r.message} for r in rules]


class Strict(BaseModel):
    """No unknown fields; the class's `rules` hold in the CRD and in Python."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, json_schema_extra=_cel_rules)
    rules: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        for rule in type(self).rules:
            if not rule.holds(self):
                raise ValueError(rule.message)
        return self


# Kubernetes' own quantity syntax (resource.Quantity): checked at admission so
# that a typo is rejected there, not by the API server when the operator
# applies a Deployment or claim built from it.
# No sign: nothing the operator sizes (storage, CPU, memory) can be negative.
QUANTITY_REGEX = (r"^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
                  r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")


def _check_quantity(value: int | str) -> int | str:
    if isinstance(value, str) and not re.match(QUANTITY_REGEX, value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity such as 500m, 1, 512Mi or 2Gi")
    return value


Quantity = Annotated[int | str, AfterValidator(_check_quantity), Field(
    description="A Kubernetes quantity, e.g. 500m, 1, 512Mi, 2Gi.",
    json_schema_extra={"pattern": QUANTITY_REGEX, "maxLength": 64})]
Cron = Annotated[str, AfterValidator(_check_cron), Field(
    min_length=1, max_length=100,
    description="Standard 5-field cron expression (e.g. \"0 3 * * *\") or @daily-style macro.",
    json_schema_extra={"x-kubernetes-validations": [{"rule": f"self.matches(r'{CRON_REGEX}')",
                                                      "message": CRON_MESSAGE}]})]


class SecretKeyRef(Strict):
    name: str = Field(min_length=1, max_length=253, description="Name of a Secret in the stack's namespace.")
    key: str = Field(min_length=1, max_length=253, description="Key inside the Secret.")


# The resources compared at admission: a fixed list keeps the CEL rule's cost
# within the API server's budget (iterating the maps' own keys does not).
COMPARED_RESOURCES = ("cpu", "memory", "ephemeral-storage")


def _limits_cover_requests(r: Resources) -> bool:
    requests, limits = r.requests or {}, r.limits or {}
    pairs = ((quantity(limits[k]), quantity(requests[k])) for k in COMPARED_RESOURCES if k in limits and k in requests)
    # A value that is no quantity at all is refused by the field's own check.
    return all(lim is None or req is None or lim >= req for lim, req in pairs)


class Resources(Strict):
    # The pod would be refused by the API server; say so at admission instead.
    rules = (Rule("!has(self.requests) || !has(self.limits) || " + str(list(COMPARED_RESOURCES)) + ".all(k, "
                  "!(k in self.requests && k in self.limits) || "
                  "quantity(string(self.limits[k])).compareTo(quantity(string(self.requests[k]))) >= 0)",
                  "resources.limits must be at least resources.requests (cpu, memory, ephemeral-storage)",
                  _limits_cover_requests),)
    # At most a handful of resource names: keeps the rule's cost bounded for the API server.
    requests: dict[str, Quantity] | None = Field(default=None, max_length=8,
                                                 description="Minimum resources (cpu, memory).")
    limits: dict[str, Quantity] | None = Field(default=None, max_length=8,
                                               description="Maximum resources (cpu, memory).")


class Autoscaling(Strict):
    rules = (Rule("!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
                  "autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas",
                  lambda a: a.minReplicas <= a.maxReplicas),)
    enabled: bool = Field(default=False, description="Scale with a HorizontalPodAutoscaler instead of fixed replicas.")
    minReplicas: int = Field(default=1, ge=1, le=1000, description="Fewest replicas the autoscaler keeps. Default 1.")
    maxReplicas: int = Field(default=5, ge=1, le=1000, description="Most replicas the autoscaler starts. Default 5.")
    targetCPUUtilizationPercentage: int | None = Field(
        default=70, ge=1, le=100, description="Average CPU utilisation to aim for. Default 70.")
    targetMemoryUtilizationPercentage: int | None = Field(
        default=None, ge=1, le=100, description="Average memory utilisation to aim for (off when unset).")


class WorkerAutoscaling(Autoscaling):
    queueLengthTarget: int = Field(
        default=100, ge=1, le=1_000_000,
        description="Messages waiting per worker at which KEDA adds workers (used when KEDA is installed). "
                    "Default 100.")


class Ingress(Strict):
    rules = (Rule("!self.enabled || has(self.host)", "ingress.host is required when ingress.enabled is true",
                  lambda i: not i.enabled or i.host is not None),)
    enabled: bool = Field(default=False, description="Expose the API through an Ingress.")
    host: str | None = Field(default=None, min_length=1, max_length=253,
                             description="Host name, e.g. moderation.example.com.")
    className: str | None = Field(default=None, description="IngressClass to use.")
    tlsSecretName: str | None = Field(default=None, description="Secret with the TLS certificate for host.")
    annotations: dict[str, str] | None = Field(default=None, description="Extra Ingress annotations.")


class ApiSpec(Strict):
    replicas: int = Field(default=2, ge=0, le=1000, description="API pods when autoscaling is off. Default 2.")
    processes: int = Field(default=1, ge=1, le=16, description="Server processes per pod (API_WORKERS). Default 1.")
    resources: Resources | None = Field(default=None, description="API container resources.")
    autoscaling: Autoscaling | None = Field(default=None, description="HorizontalPodAutoscaler for the API.")
    serviceType: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        default="ClusterIP", description="Type of the API Service. Default ClusterIP.")
    ingress: Ingress | None = Field(default=None, description="Optional Ingress in front of the API Service.")


class WorkerSpec(Strict):
    replicas: int = Field(default=1, ge=0, le=1000, description="Worker pods when autoscaling is off. Default 1.")
    concurrency: int = Field(default=4, ge=1, le=64, description="Tasks one worker pod runs at once. Default 4.")
    resources: Resources | None = Field(default=None, description="Worker container resources.")
    autoscaling: WorkerAutoscaling | None = Field(
        default=None, description="Scale workers: on queue length with KEDA when its CRD exists, else CPU/memory HPA.")


class ManagedPostgres(Strict):
    storage: Quantity = Field(default="10Gi", description="PersistentVolumeClaim size. Default 10Gi.")
    storageClassName: str | None = Field(default=None,
                                         description="StorageClass of the claim (cluster default when unset).")
    image: str = Field(default="postgres:15-alpine", min_length=1, description="PostgreSQL image.")
    resources: Resources | None = None


class ManagedRedis(Strict):
    storage: Quantity = Field(default="1Gi", description="PersistentVolumeClaim size. Default 1Gi.")
    storageClassName: str | None = Field(default=None, description="StorageClass of the claim.")
    image: str = Field(default="redis:7-alpine", min_length=1, description="Redis image.")
    resources: Resources | None = None


class External(Strict):
    urlSecretRef: SecretKeyRef = Field(description="Secret key holding the connection URL.")


def _managed_or_external(label: str) -> tuple[Rule]:
    """A dependency the stack either runs itself or is pointed at."""
    return (Rule("has(self.managed) != has(self.external)", f"{label}: set exactly one of managed or external",
                 lambda d: (d.managed is None) != (d.external is None)),)


class DatabaseSpec(Strict):
    rules = _managed_or_external("database")
    managed: ManagedPostgres | None = Field(default=None, description="Run a dev-grade PostgreSQL StatefulSet.")
    external: External | None = Field(default=None, description="Use an existing PostgreSQL (URL from a Secret).")


class RedisSpec(Strict):
    rules = _managed_or_external("redis")
    managed: ManagedRedis | None = Field(default=None, description="Run a Redis StatefulSet.")
    external: External | None = Field(default=None, description="Use an existing Redis (URL from a Secret).")


class CallbacksSpec(Strict):
    allowedHosts: list[Annotated[str, Field(min_length=1, max_length=253,
                                            pattern=r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")]] = Field(
        default_factory=list, max_length=100, description=(
            "Hosts callback URLs may point at, e.g. hooks.example.com or *.internal.example. Empty: any public "
            "host. Loopback, link-local (cloud metadata) and private addresses are refused either way."))


class Limits(Strict):
    maxTextChars: int = Field(default=32_000, ge=1, le=1_000_000, description="Longest accepted text. Default 32000.")
    maxInputs: int = Field(default=256, ge=1, le=10_000, description="Most texts per request. Default 256.")
    rateLimitPerMinute: int = Field(default=6000, ge=0, description=(
        "Default per-key rate in units: a request is 1 unit, a moderation route 1 per input per started "
        "4,000 characters; 0 disables. Default 6000."))
    rateLimitBurst: int = Field(default=200, ge=1, description="Token-bucket size per key. Default 200.")
    dailyStorageQuotaPerKey: Quantity | None = Field(default=None, description=(
        "Most content (text and metadata, in bytes, e.g. 500Mi) one API key may store per UTC day; a key's own "
        "quota overrides it. Unset: no quota."))


class BackupRetention(Strict):
    rules = (Rule("has(self.count) || has(self.maxAgeDays)", "backup.retention needs count or maxAgeDays",
                  lambda r: r.count is not None or r.maxAgeDays is not None),)
    count: int | None = Field(default=None, ge=1, le=10_000, description="Keep at most this many backups.")
    maxAgeDays: int | None = Field(default=None, ge=1, le=36_500, description="Delete backups older than this.")


class PvcStorage(Strict):
    size: Quantity = Field(default="20Gi", description="Size of the backup PersistentVolumeClaim. Default 20Gi.")
    storageClassName: str | None = Field(default=None, description="StorageClass of the claim.")


class LocalSecret(Strict):
    name: str = Field(min_length=1, max_length=253, description="Name of a Secret in the stack's namespace.")


class S3Storage(Strict):
    endpoint: str | None = Field(default=None, max_length=2048, pattern=r"^https?://[^\s/]+(/.*)?$",
                                 description="URL of an S3-compatible service such as MinIO or Ceph "
                                             "(e.g. http://minio.storage:9000); AWS S3 when unset.")
    bucket: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$",
                        description="Bucket name (lower-case letters, digits, dots and hyphens).")
    prefix: str | None = Field(default=None, max_length=512, pattern=r"^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$",
                               description="Key prefix of the backup objects. Default <namespace>/<stack>.")
    region: str | None = Field(default=None, max_length=64, description="Bucket region (AWS_DEFAULT_REGION).")
    credentialsSecret: LocalSecret = Field(
        description="Secret with keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for the bucket.")


class BackupStorage(Strict):
    rules = (Rule("!(has(self.pvc) && has(self.s3))", "backup.storage: set pvc or s3, not both",
                  lambda s: s.pvc is None or s.s3 is None),)
    pvc: PvcStorage | None = Field(default=None, description="Backups on a PersistentVolumeClaim (the default).")
    s3: S3Storage | None = Field(default=None, description="Backups in S3-compatible object storage.")


class BackupVerify(Strict):
    schedule: Cron = Field(description="When to restore the latest backup into a scratch database and check it, "
                                       "e.g. \"0 5 1 * *\" (monthly).")
    suspend: bool = Field(default=False, description="Pause scheduled verification.")
    scratchDatabaseSecretRef: SecretKeyRef | None = Field(
        default=None, description="Secret key with the URL of a database to restore into. By default a temporary "
                                  "database is created (and dropped) on the stack's PostgreSQL server, which needs "
                                  "the CREATEDB privilege.")


class BackupSpec(Strict):
    schedule: Cron = Field(description="When to back up, e.g. \"0 3 * * *\".")
    timeZone: TimeZone = None
    suspend: bool = Field(default=False, description="Pause scheduled backups.")
    retention: BackupRetention | None = Field(default=None, description="Which backups to keep. Default: 30 days.")
    storage: BackupStorage | None = Field(default=None, description="Where backups go. Default: a PVC.")
    verify: BackupVerify | None = Field(default=None, description="Scheduled test restore of the latest backup.")
    finalBackupOnDelete: bool = Field(
        default=False, description="Take one more backup when the stack is deleted; deletion waits for it. "
                                   "The backup volume is then kept whatever the deletionPolicy.")
    restoreFrom: str | None = Field(default=None, min_length=1, max_length=255,
                                    pattern=r"^[A-Za-z0-9_][A-Za-z0-9._-]*$",
                                    description="File name of a backup in the backup storage to restore; each new "
                                                "value runs one restore while the API is held out of service.")


class CleanupSpec(Strict):
    enabled: bool = Field(default=True, description="Run the retention cleanup CronJob. Default true.")
    schedule: Cron = Field(default="30 2 * * *", description="When to delete old content. Default \"30 2 * * *\".")
    timeZone: TimeZone = None
    retentionDays: int = Field(default=90, ge=1, le=36_500, description="Keep content this many days. Default 90.")


class MonitoringSpec(Strict):
    serviceMonitor: bool = Field(
        default=True, description="Create a ServiceMonitor when the Prometheus Operator CRD exists.")


class NetworkPolicySpec(Strict):
    enabled: bool = Field(default=False, description="Restrict traffic to the database and Redis to this stack's pods.")


class PolicySpec(Policy):
    """The moderation policy mounted into the API and workers (ConfigMap)."""


class ConfigMapKeyRef(Strict):
    name: str = Field(min_length=1, max_length=253, description="Name of a ConfigMap in the stack's namespace.")
    key: str = Field(min_length=1, max_length=253, description="Key inside the ConfigMap.")


class GoldenSet(Strict):
    rules = (Rule("has(self.configMapKeyRef) != has(self.secretKeyRef)",
                  "qualityGate.golden: set exactly one of configMapKeyRef or secretKeyRef",
                  lambda g: (g.configMapKeyRef is None) != (g.secretKeyRef is None)),)
    configMapKeyRef: ConfigMapKeyRef | None = Field(default=None, description="A ConfigMap key holding the JSONL.")
    secretKeyRef: SecretKeyRef | None = Field(default=None, description="A Secret key holding the JSONL.")


Share = Annotated[float, Field(ge=0, le=1)]


class CategoryTolerance(Strict):
    minRecall: Share | None = Field(default=None, description="Lowest recall of this category that passes.")
    minPrecision: Share | None = Field(default=None, description="Lowest precision of this category that passes.")


class QualityGateSpec(Strict):
    golden: GoldenSet | None = Field(default=None, description=(
        'JSONL of {"text": ..., "expected": [categories]} (one line per example); unset: the image\'s own '
        "held-out dev set."))
    maxFlagRateChange: float | None = Field(default=None, ge=0, le=100, description=(
        "Most the share of flagged golden texts may move, in percentage points, against what serves now."))
    minRecall: Share | None = Field(default=None, description="Lowest share of harmful golden texts flagged.")
    minPrecision: Share | None = Field(default=None, description="Lowest share of flagged golden texts harmful.")
    categories: dict[Category, CategoryTolerance] | None = Field(default=None, max_length=13, description=(
        "Per-category minimum recall/precision."))


class MaintenanceWindowSpec(Strict):
    schedule: Cron = Field(description="When windows start, e.g. \"0 2 * * SAT\" (5-field cron).")
    duration: str = Field(pattern=DURATION_REGEX, min_length=2, max_length=12,
                          description="How long a window stays open, e.g. 2h, 45m or 1h30m.")
    timeZone: TimeZone = None
    includePolicy: bool = Field(default=False, description=(
        "Hold policy changes for the window too (by default only version changes, their migrations and "
        "quality-gate runs wait)."))


SHADOW_SHARES_SCORES = ("shadowPolicy shares the live policy's scores: set its thresholds, default_threshold and "
                        "blocklist only (allowlist and engine are spec.policy's)")


class ModerationStackSpec(Strict):
    rules = (Rule("!has(self.shadowPolicy) || (!has(self.shadowPolicy.allowlist) && !has(self.shadowPolicy.engine))",
                  SHADOW_SHARES_SCORES,
                  lambda s: s.shadowPolicy is None or not {"allowlist", "engine"} & s.shadowPolicy.model_fields_set),)
    version: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$",
                         description="Version (image tag) of the moderation service to run.")
    image: str = Field(default="ghcr.io/ai-moderator/ai-moderator-workload", min_length=1,
                       description="Image repository; the tag is `version`.")
    imagePullPolicy: Literal["Always", "IfNotPresent", "Never"] = Field(default="IfNotPresent")
    imagePullSecrets: list[str] | None = Field(default=None, description="Names of image pull Secrets.")
    api: ApiSpec = Field(default_factory=ApiSpec, description="The HTTP API.")
    worker: WorkerSpec = Field(default_factory=WorkerSpec, description="The Celery workers.")
    database: DatabaseSpec = Field(default_factory=lambda: DatabaseSpec(managed=ManagedPostgres()),
                                   description="PostgreSQL: managed (default) or external.")
    redis: RedisSpec = Field(default_factory=lambda: RedisSpec(managed=ManagedRedis()),
                             description="Redis: managed (default) or external.")
    policy: PolicySpec | None = Field(default=None, description="Moderation thresholds and block/allow lists.")
    shadowPolicy: PolicySpec | None = Field(default=None, description=(
        "A policy evaluated beside the live one on every request, on the same scores, and never enforced: "
        "decisions carry what it would have decided, and status.shadow compares the two. The annotation "
        "moderation.ai-moderator.io/promote-shadow makes it the live policy."))
    limits: Limits = Field(default_factory=Limits, description="Request limits of the API.")
    callbacks: CallbacksSpec | None = Field(default=None, description="Where decisions may be delivered (webhooks).")
    maintenanceWindow: MaintenanceWindowSpec | None = Field(default=None, description=(
        "Version changes (with their migration and quality gate) start only inside this window, unless the "
        "annotation moderation.ai-moderator.io/apply-now is set."))
    qualityGate: QualityGateSpec | None = Field(default=None, description=(
        "Before a new version or policy rolls out, evaluate it on a golden set; roll out only within these "
        "tolerances (otherwise what serves keeps serving)."))
    backup: BackupSpec | None = Field(default=None, description="Scheduled pg_dump backups.")
    cleanup: CleanupSpec = Field(default_factory=CleanupSpec, description="Retention cleanup of old content.")
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec)
    networkPolicy: NetworkPolicySpec = Field(default_factory=NetworkPolicySpec)
    nodeSelector: dict[str, str] | None = Field(default=None, description="Node selector for every pod.")
    deletionPolicy: Literal["Retain", "Delete"] = Field(
        default="Retain", description="Retain (default) keeps data volumes and Secrets when the stack is deleted.")


class Condition(Strict):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    lastTransitionTime: datetime
    observedGeneration: int | None = None


class ReplicaStatus(Strict):
    replicas: int = 0
    readyReplicas: int = 0
    summary: str = Field(default="0/0", description="ready/desired, for kubectl get.")


class MigrationStatus(Strict):
    job: str | None = None
    phase: Literal["Pending", "Running", "Succeeded", "Failed"] | None = None
    targetVersion: str | None = None
    completionTime: datetime | None = None
    message: str | None = None


class RestoreStatus(Strict):
    request: str | None = Field(default=None, description="The backup file asked for.")
    job: str | None = None
    phase: Literal["Running", "Succeeded", "Failed"] | None = None
    completionTime: datetime | None = None
    message: str | None = None


class BackupStatus(Strict):
    lastScheduleTime: datetime | None = Field(default=None, description="When the CronJob last started a backup.")
    lastSuccessTime: datetime | None = Field(default=None, description="When the last successful backup finished.")
    lastError: str | None = Field(default=None, description="Why the latest backup failed (unset after a success).")
    location: str | None = Field(default=None, description="Where backups go: /backups on the PVC or s3://bucket/prefix.")
    lastVerifyTime: datetime | None = Field(default=None, description="When the last test restore finished.")
    lastVerifyResult: Literal["Succeeded", "Failed"] | None = Field(default=None, description="Its outcome.")
    lastVerifyError: str | None = Field(default=None, description="Why it failed.")


class CategoryQuality(Strict):
    recall: float | None = None
    precision: float | None = None
    support: int = 0


class QualityGateStatus(Strict):
    phase: Literal["Waiting", "Running", "Passed", "Failed"] | None = Field(default=None, description=(
        "Waiting (for the migration), Running, Passed or Failed, for the candidate."))
    candidate: str | None = Field(default=None, description="Image and policy fingerprint evaluated.")
    job: str | None = None
    message: str | None = Field(default=None, description="Why it failed, with the numbers.")
    examples: int | None = Field(default=None, description="Golden examples evaluated.")
    golden: str | None = Field(default=None, description="Digest of the golden set.")
    flagRate: float | None = Field(default=None, description="Share of golden texts the candidate flags.")
    baselineFlagRate: float | None = Field(default=None, description="The same for what serves now.")
    recall: float | None = None
    precision: float | None = None
    categories: dict[str, CategoryQuality] | None = Field(default=None, description="The candidate per category.")
    passed: str | None = Field(default=None, description="The last candidate that passed (what serves).")
    passedFlagRate: float | None = Field(default=None, description="Its flag rate on the golden set `golden`.")
    passedGolden: str | None = Field(default=None, description="The golden set it was measured on.")


class ShadowStatus(Strict):
    observedAt: datetime | None = Field(default=None, description="When the API was last asked.")
    windowSeconds: int | None = Field(default=None, description="The period summarised (the last hour).")
    decisions: int | None = Field(default=None, description="Decisions in it that the shadow policy also made.")
    liveFlagRate: float | None = None
    shadowFlagRate: float | None = None
    agreement: float | None = Field(default=None, description="Share of decisions where both flag or both pass.")
    policy: str | None = Field(default=None, description="The shadow policy's fingerprint.")
    message: str | None = Field(default=None, description="Why there is no summary.")
    promoted: str | None = Field(default=None, description="The last promote-shadow request carried out.")


class MaintenanceStatus(Strict):
    open: bool = Field(default=False, description="Whether a window is open now.")
    nextWindowStart: datetime | None = Field(default=None, description="When the next window starts.")
    waiting: str | None = Field(default=None, description="What waits for it.")


Phase = Literal["Pending", "Migrating", "Progressing", "Ready", "Degraded", "Paused", "Deleting"]


class ModerationStackStatus(Strict):
    observedGeneration: int | None = Field(default=None, description="The generation this status describes.")
    phase: Phase | None = Field(default=None, description="Pending, Migrating, Progressing, Ready, Degraded, Paused, "
                                                         "or Deleting (waiting for the final backup).")
    version: str | None = Field(default=None, description="Version rolled out to the API and workers.")
    targetVersion: str | None = Field(default=None, description="Version the spec asks for.")
    api: ReplicaStatus | None = None
    worker: ReplicaStatus | None = None
    migration: MigrationStatus | None = None
    backup: BackupStatus | None = None
    restore: RestoreStatus | None = Field(default=None, description="The last restore and its outcome.")
    qualityGate: QualityGateStatus | None = Field(default=None, description="The last quality-gate evaluation.")
    maintenance: MaintenanceStatus | None = Field(default=None, description="The maintenance window.")
    shadow: ShadowStatus | None = Field(default=None, description="Live versus shadow policy over the last hour.")
    endpoint: str | None = Field(default=None, description="In-cluster URL of the API.")
    conditions: list[Condition] | None = None


def parse_spec(spec: dict[str, Any]) -> ModerationStackSpec:
    return ModerationStackSpec.model_validate(spec)
