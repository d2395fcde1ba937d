from __future__ import annotations

from opstui.store import Store
from opstui.store.metrics import record_samples, series_window
from opstui.store.retention import apply_retention

DAY = 86_400.0


def test_endpoint_samples_are_thinned_then_dropped(store: Store) -> None:
    now = 1_800_000_000.0
    # 40 days of a sample every minute.
    points = [(now - 40 * DAY + 60 * i, float(i)) for i in range(40 * 24 * 60)]
    record_samples(store, "endpoint/web", "requests_total", points)
    record_samples(store, "pipeline/train", "loss", points[:1000])
    result = apply_retention(store, now=now, batch=10**7)
    kept = series_window(store, "endpoint/web", "requests_total")
    assert kept[0].ts >= now - 35 * DAY
    recent = [s for s in kept if s.ts >= now - DAY]
    assert len(recent) == 24 * 60  # the last day is untouched
    older = [s for s in kept if s.ts < now - DAY]
    assert len(older) == 34 * 24 * 12  # one per 5 minutes
    assert result.deleted_old == 5 * 24 * 60
    # Run metrics are history, never thinned.
    assert len(series_window(store, "pipeline/train", "loss")) == 1000
    again = apply_retention(store, now=now)
    assert (again.deleted_old, again.thinned) == (0, 0)


def test_retention_works_in_bounded_batches(store: Store) -> None:
    now = 1_800_000_000.0
    points = [(now - 40 * DAY + 60 * i, 1.0) for i in range(10_000)]
    record_samples(store, "endpoint/web", "x", points)
    first = apply_retention(store, now=now, batch=1000)
    assert first.deleted_old == 1000
