"""Health signals: consumer lag, store staleness, services and forecast age, sampled by the
alerting service into the <prefix>-metrics index (docs/reliability.md, "Health signals")."""
