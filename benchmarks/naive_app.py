"""Baseline for `make bench`: the obvious service that runs the same engine
(default policy: the cascade) once per request, with no batching and no
persistence."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

from ai_moderator_workload.engine.pipeline import Engine
from ai_moderator_workload.engine.policy import Policy

engine = Engine(Policy())
engine.warm_up()
app = FastAPI()


class Body(BaseModel):
    input: str | list[str]


@app.post("/v1/moderations")
def moderate(body: Body) -> dict:
    texts = [body.input] if isinstance(body.input, str) else body.input
    results = []
    for text in texts:
        d = engine.moderate([text])[0]
        results.append({"flagged": d.flagged, "categories": d.categories, "category_scores": d.scores})
    return {"id": "modr-naive", "model": engine.engine_version, "results": results}
