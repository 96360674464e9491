import time

from selfmend.models import parse_batch

NOW = time.time()


def test_malformed_samples_are_rejected_by_field_and_the_rest_kept():
    batch = parse_batch(
        [
            {"series": "cache.hit_ratio", "ts": NOW, "value": 0.9},
            {"series": "cache.hit_ratio", "ts": NOW, "value": "fast"},
            {"series": "cache.hit_ratio", "ts": NOW, "value": float("nan")},
            {"ts": NOW, "value": 1.0},
            {"series": "cache.hit_ratio", "ts": NOW + 3600, "value": 1.0},
            {"series": "cache.hit_ratio", "ts": NOW, "value": 0.8, "labels": {"service": "shop"}},
        ],
        max_skew=300,
        now=NOW,
    )

    assert [s.value for s in batch.samples] == [0.9, 0.8]
    assert [(r.index, r.field) for r in batch.rejected] == [
        (1, "value"),
        (2, "value"),
        (3, "series"),
        (4, "ts"),
    ]
    assert "future" in batch.rejected[3].message


def test_log_items_and_unknown_kinds():
    batch = parse_batch(
        [
            {"kind": "log", "ts": NOW, "level": "ERROR", "message": "method x not found"},
            {"kind": "metric?", "ts": NOW},
            "not an object",
        ],
        max_skew=300,
        now=NOW,
    )
    assert [event.message for event in batch.logs] == ["method x not found"]
    assert [(r.index, r.field) for r in batch.rejected] == [(1, "kind"), (2, "item")]
