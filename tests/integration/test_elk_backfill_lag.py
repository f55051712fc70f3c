"""Back-filled history must not raise arrival-lag alerts; live records still do."""

from datetime import datetime, timedelta, timezone

import pytest

from elk.alerting.rules import load_rules
from elk.alerting.store import FactsReader
from meteoflow.es import make_es_client

pytestmark = pytest.mark.integration


def _doc(region, observed, ingested, batch_id):
    return {"region_id": region, "region_name": region.title(), "observed_at": observed.isoformat(),
            "ingested_at": ingested.isoformat(), "lag_seconds": (ingested - observed).total_seconds(),
            "batch_id": batch_id, "source": "simulator"}


def test_lag_facts_ignore_backfill_batches(isolated):
    es = make_es_client(isolated)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    old = now - timedelta(hours=70)
    index = isolated.index("observations")
    es.index(index=index, id="a", document=_doc("dakar", old, now, "backfill-20261126T000000Z-simulator-1"))
    es.index(index=index, id="b", document=_doc("thies", old, now, "backfill-20261126T000000Z-simulator-1"))
    es.index(index=index, id="c", document=_doc("thies", now - timedelta(hours=3), now, "20261126T000000Z-openweathermap-2"))
    es.indices.refresh(index=index)
    facts = FactsReader(isolated, es).read(load_rules(isolated.alert_rules_file), now)
    assert facts.regions["dakar"].lag_seconds is None  # history only
    assert facts.regions["dakar"].last_seen == now
    assert facts.regions["thies"].lag_seconds == pytest.approx(3 * 3600)  # the live record counts
