"""Reading Prometheus metrics as Prometheus would: the exposition text (from a registry, or
scraped over HTTP) parsed by prometheus_client's own parser, so the format is checked for real."""

from __future__ import annotations

import urllib.request

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    """The parsed samples of one scrape, looked up by sample name and labels."""

    def __init__(self, text: str):
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = [s for f in self.families.values() for s in f.samples]

    def value(self, name: str, **labels: str) -> float | None:
        """The value of the one sample `name` whose labels include `labels` (None when absent)."""
        found = [s.value for s in self.samples if s.name == name and labels.items() <= s.labels.items()]
        assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples; name more labels"
        return found[0] if found else None

    def labels(self, name: str, label: str) -> set[str]:
        """Every value of `label` among the samples `name`."""
        return {s.labels[label] for s in self.samples if s.name == name and label in s.labels}

    def type_of(self, family: str) -> str:
        return self.families[family].type


def from_registry(registry: CollectorRegistry) -> Scrape:
    return Scrape(generate_latest(registry).decode())


def scrape(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> Scrape:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as resp:
        assert resp.status == 200, f"{url} answered {resp.status}"
        assert resp.headers["Content-Type"].startswith("text/plain"), resp.headers["Content-Type"]
        return Scrape(resp.read().decode())
