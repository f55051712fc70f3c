"""Producer sources: one interface (`Source.fetch(regions, now) -> SourceResult`), three
implementations (OpenWeatherMap, simulator, replay), chosen by `make_source`."""

from __future__ import annotations

from meteoflow.settings import Settings
from producer.sources.base import FatalSourceError, RegionFailure, Source, SourceResult


def make_source(settings: Settings, live_only: bool = False) -> Source:
    """The source `settings.effective_source` names. `live_only`: the simulator skips its back-fill."""
    kind = settings.effective_source
    if kind == "openweathermap":
        from producer.sources.openweathermap import OpenWeatherMapSource

        return OpenWeatherMapSource(settings)
    if kind == "replay":
        from producer.sources.replay import ReplaySource

        if settings.replay_file is None:
            raise FatalSourceError("the replay source needs a file: --replay-file FILE or METEOFLOW_REPLAY_FILE")
        return ReplaySource(settings.replay_file, settings.producer_interval_seconds)
    from producer.sources.simulator import SimulatorSource

    return SimulatorSource(settings, live_only=live_only)


__all__ = ["FatalSourceError", "RegionFailure", "Source", "SourceResult", "make_source"]
