"""The comparison that decides whether the operator writes at all."""

from __future__ import annotations

from ai_moderator_operator.diff import contains


def test_server_added_fields_do_not_count_as_drift() -> None:
    desired = {"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "api", "image": "x:1"}]}}}}
    live = {"spec": {"replicas": 2, "progressDeadlineSeconds": 600, "template": {"spec": {
        "containers": [{"name": "api", "image": "x:1", "terminationMessagePath": "/dev/termination-log"}],
        "dnsPolicy": "ClusterFirst"}}}, "status": {"readyReplicas": 2}}
    assert contains(live, desired)


def test_hand_edits_of_owned_fields_are_drift() -> None:
    desired = {"spec": {"replicas": 2}}
    assert not contains({"spec": {"replicas": 5}}, desired)
    assert not contains({"spec": {}}, desired)
    assert not contains({"spec": {"containers": [{"a": 1}, {"b": 2}]}}, {"spec": {"containers": [{"a": 1}]}})


def test_canonicalised_values_are_equal() -> None:
    assert contains({"cpu": "500m", "memory": "1Gi", "n": "1"}, {"cpu": "0.5", "memory": "1024Mi", "n": 1})
    assert not contains({"cpu": "600m"}, {"cpu": "0.5"})
    assert not contains({"flag": "True"}, {"flag": True})


def test_empty_collections_match_absent_fields() -> None:
    assert contains({"spec": {}}, {"spec": {"volumes": [], "annotations": {}}})
    assert not contains({"spec": {}}, {"spec": {"volumes": [{"name": "x"}]}})


def test_status_patch_nulls_fields_that_disappeared_at_any_depth() -> None:
    from ai_moderator_operator.status import status_patch

    old = {"phase": "Ready", "migration": {"job": "a", "phase": "Succeeded", "completionTime": "t1"}, "restore": {}}
    new = {"phase": "Migrating", "migration": {"job": "b", "phase": "Running"}}
    patch = status_patch(old, new)
    assert patch == {"phase": "Migrating", "restore": None,
                     "migration": {"job": "b", "phase": "Running", "completionTime": None}}
    assert status_patch(new, new) is None
    # A list is replaced as a whole (merge patch semantics), e.g. conditions.
    assert status_patch({"conditions": [1, 2]}, {"conditions": [2]}) == {"conditions": [2]}

