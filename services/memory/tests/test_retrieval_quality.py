"""Retrieval quality on a labelled set written for this project (60 memories, one query
each, phrased as a user would ask): recall@5 of full-text search, reported and held to a
floor so a regression shows."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

DATA = json.loads((Path(__file__).parent / "data" / "retrieval_eval.json").read_text())
FLOOR = 0.8  # measured 85.0% on 2026-11-25; see the printed figure


def test_recall_at_5_fts(memory_api: httpx.Client) -> None:
    ids: dict[str, str] = {}
    for m in DATA["memories"]:
        made = memory_api.post(
            "/v1/memories", json={"scope": "user", "subject": "eval", "text": m["text"]}
        ).json()
        ids[made["id"]] = m["id"]
    # noise from other users must not get in the way (search is scoped)
    for n in range(100):
        memory_api.post(
            "/v1/memories",
            json={"scope": "user", "subject": f"other{n}", "text": f"other user note {n}"},
        )
    found = 0
    misses = []
    for q in DATA["queries"]:
        hits = memory_api.get(
            "/v1/memories/search", params={"q": q["query"], "user": "eval", "limit": 5}
        ).json()["data"]
        got = [ids[h["memory"]["id"]] for h in hits if h["memory"]["id"] in ids]
        if set(q["relevant"]) & set(got):
            found += 1
        else:
            misses.append(q["query"])
    recall = found / len(DATA["queries"])
    print(
        f"\nmemory retrieval recall@5 (FTS5 BM25): {recall:.1%} on {len(DATA['queries'])} queries"
    )
    print("missed:", misses)
    assert len(DATA["queries"]) >= 50
    assert recall >= FLOOR
