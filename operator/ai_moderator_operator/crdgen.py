"""Generates the ModerationStack CRD from the pydantic API types, the way
controller-gen does from Go types: `python -m ai_moderator_operator.crdgen`
writes crds/moderationstacks.yaml (a test fails when it is stale)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from .api import GROUP, KIND, PLURAL, VERSION, ModerationStackSpec, ModerationStackStatus

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "crds" / "moderationstacks.yaml"
# Helm installs CRDs from here.
CHART_CRD_FILE = ROOT / "charts" / "ai-moderator-operator" / "crds" / "moderationstacks.yaml"
# Children are named "<stack>-<suffix>" (up to 20 characters of suffix) and
# must stay within the 63 characters of a label value.
MAX_NAME = 40
_KEEP = {"type", "description", "properties", "required", "items", "additionalProperties", "enum", "minimum",
         "maximum", "minLength", "maxLength", "pattern", "format", "minItems", "maxItems", "x-kubernetes-validations",
         "exclusiveMinimum", "exclusiveMaximum", "maxProperties", "minProperties"}


def structural(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Turn a pydantic JSON schema node into a Kubernetes structural schema node."""
    if "$ref" in schema:
        target = defs[schema["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        if "x-kubernetes-validations" in target and "x-kubernetes-validations" in schema:
            merged["x-kubernetes-validations"] = target["x-kubernetes-validations"] + schema["x-kubernetes-validations"]
        return structural(merged, defs)
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        if sorted(o.get("type", "") for o in options) == ["integer", "string"]:
            # A pattern constrains only the string form, as in Kubernetes' own CRDs.
            return {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}],
                    **{k: rest[k] for k in ("description", "pattern") if k in rest}}
        if len(options) != 1:
            raise ValueError(f"cannot express anyOf {options} in a structural schema")
        return structural({**options[0], **rest}, defs)
    node: dict[str, Any] = {}
    if "const" in schema:
        node["enum"] = [schema["const"]]
    for key, value in schema.items():
        if key not in _KEEP:
            continue
        if key == "properties":
            node[key] = {name: structural(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            node[key] = structural(value, defs)
        elif key == "additionalProperties":
            continue  # `false` (extra="forbid"): the API server prunes and kubectl rejects unknown fields
        elif key == "exclusiveMinimum":
            node["minimum"], node["exclusiveMinimum"] = value, True
        elif key == "exclusiveMaximum":
            node["maximum"], node["exclusiveMaximum"] = value, True
        else:
            node[key] = value
    keys = schema.get("propertyNames", {}).get("enum")
    if keys:  # structural schemas have no propertyNames: say it in CEL
        rule = {"rule": f"self.all(k, k in {keys!r})".replace("'", '"'),
                "message": f"keys must be among: {', '.join(keys)}"}
        node.setdefault("x-kubernetes-validations", []).append(rule)
    if node.get("type") == "object" and "properties" not in node and "additionalProperties" not in node:
        node["x-kubernetes-preserve-unknown-fields"] = True
    return node


def schema_of(model: type, mode: str) -> dict[str, Any]:
    raw = model.model_json_schema(mode=mode, ref_template="#/$defs/{model}")  # type: ignore[attr-defined]
    return structural(raw, raw.get("$defs", {}))


def crd() -> dict[str, Any]:
    ready = '.status.conditions[?(@.type=="Ready")]'
    spec = schema_of(ModerationStackSpec, "validation")
    status = schema_of(ModerationStackStatus, "serialization")
    status.pop("required", None)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": KIND, "listKind": f"{KIND}List", "plural": PLURAL, "singular": "moderationstack",
                      "shortNames": ["mstack"], "categories": ["ai-moderator"]},
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Ready", "type": "string", "jsonPath": f"{ready}.status"},
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Version", "type": "string", "jsonPath": ".status.version"},
                    {"name": "API", "type": "string", "jsonPath": ".status.api.summary"},
                    {"name": "Workers", "type": "string", "jsonPath": ".status.worker.summary"},
                    {"name": "Last Backup", "type": "date", "jsonPath": ".status.backup.lastSuccessTime"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    {"name": "Gate", "type": "string", "jsonPath": ".status.qualityGate.phase", "priority": 1},
                    {"name": "Next Window", "type": "date", "jsonPath": ".status.maintenance.nextWindowStart",
                     "priority": 1},
                    {"name": "Message", "type": "string", "jsonPath": f"{ready}.message", "priority": 1},
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "A self-hosted AI content-moderation service: API, workers, storage, backups.",
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": spec,
                        "status": status,
                    },
                    "required": ["spec"],
                    "x-kubernetes-validations": [{
                        "rule": f"size(self.metadata.name) <= {MAX_NAME}",
                        "message": f"metadata.name must be at most {MAX_NAME} characters (child names add a suffix)",
                    }],
                }},
            }],
        },
    }


def render() -> str:
    header = "# Generated by `python -m ai_moderator_operator.crdgen` from operator/ai_moderator_operator/api.py.\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=120)


def main() -> None:
    text = render()
    for path in (CRD_FILE, CHART_CRD_FILE):
        if "--check" in sys.argv:
            if not path.exists() or path.read_text() != text:
                sys.exit(f"{path} is stale: run `python -m ai_moderator_operator.crdgen`")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
