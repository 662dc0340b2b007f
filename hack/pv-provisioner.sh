#!/usr/bin/env bash
# A minimal volume provisioner for the local control plane (kwok runs no
# kubelet and no CSI driver): every pending PersistentVolumeClaim of the
# default "standard" StorageClass gets a pre-bound hostPath PersistentVolume,
# so StatefulSets schedule as they would on a real cluster. The directory is
# made world-writable, as local-path provisioners do: a pod's fsGroup does not
# apply to hostPath volumes, and the database runs as a non-root user.
set -uo pipefail
KUBECTL=("$1" --kubeconfig "$2")
PV_ROOT="$3"
while true; do
  "${KUBECTL[@]}" get pvc -A -o jsonpath='{range .items[?(@.status.phase=="Pending")]}{.metadata.namespace}{" "}{.metadata.name}{" "}{.metadata.uid}{" "}{.spec.resources.requests.storage}{" "}{.spec.storageClassName}{"\n"}{end}' 2>/dev/null |
  while read -r ns name uid size class; do
    [[ -n "$uid" && "$class" == standard ]] || continue
    mkdir -p "$PV_ROOT/$uid" && chmod 0777 "$PV_ROOT/$uid"
    "${KUBECTL[@]}" apply -f - >/dev/null 2>&1 <<PV
apiVersion: v1
kind: PersistentVolume
metadata:
  name: pv-${uid}
  labels: {provisioned-by: ai-moderator-local}
spec:
  capacity: {storage: ${size}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Delete
  storageClassName: standard
  hostPath: {path: ${PV_ROOT}/${uid}}
  claimRef: {namespace: ${ns}, name: ${name}, uid: ${uid}}
PV
  done
  sleep 1
done
