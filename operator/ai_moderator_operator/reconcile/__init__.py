"""One reconcile pass, as named steps over one applier. `reconciler.py` (the
package above) orders them; each module here owns one concern:

- applier: cache-first reads, server-side apply of what differs, create-once, delete, status write
- jobs: a Job's phase, finish time and, when it failed, how its last pod ended
- capabilities: which optional APIs (KEDA, Prometheus Operator) the cluster has
- secrets: the generated Secret and the user Secrets the spec references
- migration: the migration Job that gates every version change
- restore: holding the app out of service and running the restore Job
- backups: backup status from the CronJobs' Jobs, and on-demand backups
- pruning: children the spec stopped asking for
- deletion: the final backup and the deletion policy

Every step talks to the cluster through `Applier` (and so through the `Kube`
protocol): the unit tests run them on an in-memory `Kube`."""
