"""Offline weather: a deterministic simulator with the same output as OpenWeatherMap.

The weather of a region is a pure function of its climate (from latitude and a coastal
hint), the time (season, local solar hour) and slow anomalies that persist for days:
AR(1) processes sampled every `KNOT_HOURS` and interpolated in between, so weather
changes smoothly and the daily maximum stays mid-afternoon in local solar time.
Humidity comes from a dew point (moisture changes slowly, relative humidity swings with
temperature, as in real air), pressure and wind follow the same anomalies, clouds drive
the weather description, the UV index and the diurnal range.

Precipitation follows West Africa's wet season: showers come mostly from June to October
(peaking in August-September), convective ones in the afternoon and evening, in spells when the
slow "rain" anomaly is high; southern regions get more than the Sahel (about 1,200 mm a year in
Ziguinchor, 500 in Dakar, 200 in Saint-Louis); the dry season has almost none. Whether an hour
rains and how much come from a generator seeded by (seed, region, hour), judged at the start of
the hour: every observation within an hour reports the same amount, and the other draws are
unchanged.

Each region has its own `random.Random` seeded from (seed, region id): the same seed and
the same sequence of times give the same records, whatever other regions are simulated.

Public entry points:
- `RegionSimulator(region, seed).observe(when)` -> observation fields for one instant;
- `simulate_history(regions, start, hours, seed, step_minutes)` -> Observations as fast as
  possible (benchmarks, back-fills); `throttle(iterable, per_second)` paces any iterable;
- `SimulatorSource` -> the producer source: accelerated back-fill clock, then live.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator, TypeVar

from meteoflow.contracts import Observation
from meteoflow.settings import Settings
from producer.regions import Region
from producer.sources.base import Source, SourceResult, region_fields

KNOT_HOURS = 12.0  # anomalies are drawn every 12 h and interpolated between
PERSISTENCE_HOURS = 60.0  # e-folding time of the anomalies (weather regimes last days)
PEAK_SOLAR_HOUR = 15.0  # daily maximum: mid-afternoon, local solar time
_PHI = math.exp(-KNOT_HOURS / PERSISTENCE_HOURS)
_INNOVATION = math.sqrt(1 - _PHI**2)  # keeps each anomaly a unit-variance stationary AR(1)
_LATENTS = ("temp", "clouds", "pressure", "wind", "wind_dir", "rain")


@dataclass(frozen=True)
class Climate:
    annual_mean: float  # deg C
    seasonal_amplitude: float  # deg C, half the difference warmest - coldest month
    hottest_day: float  # day of year of the seasonal maximum
    diurnal_half_range: float  # deg C under a clear sky
    dew_depression: float  # daily mean temperature - dew point, dry season
    monsoon: float  # 0..1: how much a summer wet season moistens and clouds the region
    wind_base: float  # m/s
    prevailing_deg: float
    pressure_sigma: float  # hPa


def climate_for(region: Region) -> Climate:
    """A plausible climate from latitude and the coastal hint (coasts: milder, moister, windier)."""
    alat = abs(region.lat)
    north = region.lat >= 0
    coastal = region.coastal
    tropics = 5 <= alat <= 25
    if tropics:  # hottest just before the rains (May in the Sahel)
        hottest = 130.0 if north else 310.0
    else:
        hottest = 200.0 if north else 20.0
    if alat < 30:
        prevailing = 45.0 if north else 135.0  # trade winds
    else:
        prevailing = 260.0  # westerlies
    return Climate(
        annual_mean=28.0 - 0.5 * max(0.0, alat - 15.0) - (2.5 if coastal else 0.0),
        seasonal_amplitude=(1.5 + 0.25 * alat) * (0.6 if coastal else 1.0),
        hottest_day=hottest,
        diurnal_half_range=3.0 if coastal else 6.5,
        dew_depression=6.0 if coastal else 14.0,
        monsoon=1.0 if tropics else (0.4 if alat < 5 else 0.0),
        wind_base=(4.5 if coastal else 2.5) + 0.05 * alat,
        prevailing_deg=prevailing,
        pressure_sigma=2.0 + 0.15 * alat,
    )


# --- astronomy (good to a few minutes, enough for weather) ------------------------------
def _day_of_year(when: datetime) -> float:
    start = datetime(when.year, 1, 1, tzinfo=timezone.utc)
    return (when - start).total_seconds() / 86400.0


def solar_hour(when: datetime, lon: float) -> float:
    """Local mean solar time in hours [0, 24): UTC shifted by the longitude."""
    utc_hours = when.hour + when.minute / 60 + when.second / 3600
    return (utc_hours + lon / 15.0) % 24.0


def _declination(doy: float) -> float:
    return math.radians(-23.44) * math.cos(2 * math.pi * (doy + 10) / 365.25)


def sun_elevation_sine(when: datetime, lat: float, lon: float) -> float:
    decl = _declination(_day_of_year(when))
    hour_angle = math.radians(15.0 * (solar_hour(when, lon) - 12.0))
    phi = math.radians(lat)
    return math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(hour_angle)


def sunrise_sunset(when: datetime, lat: float, lon: float) -> tuple[datetime | None, datetime | None]:
    """Sunrise and sunset (UTC) of the UTC day of `when`; None during polar day or night."""
    decl = _declination(_day_of_year(when))
    cos_h0 = -math.tan(math.radians(lat)) * math.tan(decl)
    if not -1.0 <= cos_h0 <= 1.0:
        return None, None
    half_day_hours = math.degrees(math.acos(cos_h0)) / 15.0
    midnight = when.replace(hour=0, minute=0, second=0, microsecond=0)
    noon = midnight + timedelta(hours=12.0 - lon / 15.0)
    rise = noon - timedelta(hours=half_day_hours)
    sets = noon + timedelta(hours=half_day_hours)
    return rise.replace(microsecond=0), sets.replace(microsecond=0)


# --- derived quantities -----------------------------------------------------------------
def relative_humidity(temp: float, dew_point: float) -> float:
    """Magnus formula (Alduchov & Eskridge coefficients), percent."""
    a, b = 17.625, 243.04
    return 100.0 * math.exp(a * dew_point / (b + dew_point) - a * temp / (b + temp))


def feels_like(temp: float, humidity: float, wind_speed: float) -> float:
    """Heat index in hot humid air, wind chill in cold wind, else the temperature."""
    if temp >= 27.0 and humidity >= 40.0:
        f = temp * 9 / 5 + 32
        r = humidity
        hi = (-42.379 + 2.04901523 * f + 10.14333127 * r - 0.22475541 * f * r - 6.83783e-3 * f * f
              - 5.481717e-2 * r * r + 1.22874e-3 * f * f * r + 8.5282e-4 * f * r * r - 1.99e-6 * f * f * r * r)
        return min((hi - 32) * 5 / 9, 75.0)
    kmh = wind_speed * 3.6
    if temp <= 10.0 and kmh > 4.8:
        return 13.12 + 0.6215 * temp - 11.37 * kmh**0.16 + 0.3965 * temp * kmh**0.16
    return temp


def _sky(cloud_fraction: float, raining: bool, heavy: bool, misty: bool, snowing: bool = False) -> tuple[str, str, str]:
    """(main, description, icon code without d/n), OpenWeatherMap's vocabulary."""
    if snowing:
        return ("Snow", "snow", "13") if heavy else ("Snow", "light snow", "13")
    if raining:
        return ("Rain", "moderate rain", "10") if heavy else ("Rain", "light rain", "10")
    if misty:
        return "Mist", "mist", "50"
    if cloud_fraction < 0.11:
        return "Clear", "clear sky", "01"
    if cloud_fraction < 0.25:
        return "Clouds", "few clouds", "02"
    if cloud_fraction < 0.5:
        return "Clouds", "scattered clouds", "03"
    if cloud_fraction < 0.85:
        return "Clouds", "broken clouds", "04"
    return "Clouds", "overcast clouds", "04"


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


CONVECTIVE_PEAK_HOUR = 18.0  # showers: late afternoon and evening, local solar time
MODERATE_RAIN_MM = 2.5  # OpenWeatherMap's "moderate rain" starts at 2.5 mm/h


def rain_scale(region: Region) -> float:
    """How wet a region's rainy season is: the south of the Sahel gets far more than its north."""
    return min(1.8, max(0.4, (18.5 - abs(region.lat)) / 3.8))


def shower(rng: random.Random, wet: float, solar: float, rain_anomaly: float, scale: float) -> float:
    """Precipitation (mm) over one hour; 0 for most hours. `wet` is the season (0..1), `solar`
    the local solar hour, `rain_anomaly` the slow unit-variance anomaly that makes wet spells."""
    from_peak = (solar - CONVECTIVE_PEAK_HOUR + 12.0) % 24.0 - 12.0
    convective = math.exp(-(from_peak / 3.0) ** 2)
    chance = 1.3 * wet * (0.015 + 0.22 * convective) * scale * _logistic(1.5 * rain_anomaly + 0.5)
    chance += 0.002 * _logistic(3.0 * (rain_anomaly - 2.0))  # the rare out-of-season shower
    if rng.random() >= chance:
        return 0.0
    return round(min(120.0, (0.3 + rng.expovariate(1.0 / (2.5 + 4.0 * convective))) * scale), 1)


# --- one region --------------------------------------------------------------------------
class RegionSimulator:
    """The weather of one region over time. Times passed to `observe` must not go backwards."""

    def __init__(self, region: Region, seed: int):
        self.region = region
        self.seed = seed
        self.climate = climate_for(region)
        self.rng = random.Random(f"meteoflow-simulator:{seed}:{region.id}")
        self._knot: int | None = None
        self._prev: tuple[float, ...] = ()
        self._next: tuple[float, ...] = ()
        self._last: datetime | None = None

    def _step(self, state: tuple[float, ...]) -> tuple[float, ...]:
        return tuple(_PHI * x + _INNOVATION * self.rng.gauss(0.0, 1.0) for x in state)

    def _anomalies(self, when: datetime) -> dict[str, float]:
        hours = when.timestamp() / 3600.0
        knot = math.floor(hours / KNOT_HOURS)
        if self._knot is None:
            self._knot = knot
            self._prev = tuple(self.rng.gauss(0.0, 1.0) for _ in _LATENTS)
            self._next = self._step(self._prev)
        while self._knot < knot:
            self._prev, self._next = self._next, self._step(self._next)
            self._knot += 1
        w = hours / KNOT_HOURS - knot
        return {name: (1 - w) * a + w * b for name, a, b in zip(_LATENTS, self._prev, self._next)}

    def _wet_season(self, when: datetime) -> float:
        """0 (dry season) .. 1 (height of the rains: August in the northern tropics)."""
        wet_peak = 230.0 if self.region.lat >= 0 else 45.0
        return self.climate.monsoon * max(0.0, math.cos(2 * math.pi * (_day_of_year(when) - wet_peak) / 365.25)) ** 2

    def observe(self, when: datetime) -> dict[str, Any]:
        """Observation fields (without batch_id, produced_at) at `when` (aware)."""
        when = when.astimezone(timezone.utc)
        if self._last is not None and when < self._last:
            raise ValueError(f"simulated time went backwards for {self.region.id}: {when} < {self._last}")
        self._last = when
        c, region = self.climate, self.region
        z = self._anomalies(when)
        doy = _day_of_year(when)
        season = math.cos(2 * math.pi * (doy - c.hottest_day) / 365.25)
        wet = self._wet_season(when)
        hour = solar_hour(when, region.lon)
        diurnal = math.cos(2 * math.pi * (hour - PEAK_SOLAR_HOUR) / 24.0)

        # Keyed by the hour (not drawn from self.rng): one amount per hour, whatever the step.
        # Judged at the start of the hour (same 12 h knot as `when`, so no state moves).
        hour_start = when.replace(minute=0, second=0, microsecond=0)
        hour_rng = random.Random(f"meteoflow-rain:{self.seed}:{region.id}:{int(hour_start.timestamp()) // 3600}")
        precipitation = shower(hour_rng, self._wet_season(hour_start), solar_hour(hour_start, region.lon), self._anomalies(hour_start)["rain"],
                               rain_scale(region))
        raining = precipitation > 0
        heavy = precipitation >= MODERATE_RAIN_MM
        clouds = round(100 * _logistic(1.6 * (z["clouds"] + 2.4 * wet - 1.1)))
        if raining:  # rain falls from a thick overcast
            clouds = max(clouds, 85 + min(15, round(2 * precipitation)))
        cloud_fraction = clouds / 100  # rounded first, so the description matches the published percent

        daily_mean = c.annual_mean + c.seasonal_amplitude * season + 1.8 * z["temp"] - 1.5 * wet
        temp = daily_mean + c.diurnal_half_range * (1 - 0.45 * cloud_fraction) * diurnal
        temp += self.rng.gauss(0.0, 0.15)

        depression = max(0.5, c.dew_depression * (1 - 0.6 * wet) - 1.2 * z["clouds"])
        dew_point = min(daily_mean - depression, temp)
        if raining:  # falling rain nearly saturates the air it falls through
            dew_point = max(dew_point, temp - 1.5)
        humidity = max(3.0, min(100.0, relative_humidity(temp, dew_point)))
        misty = not raining and humidity >= 95.0

        wind = c.wind_base + 1.0 * z["wind"] + 1.2 * diurnal + (2.0 if raining else 0.0)
        wind_speed = max(0.0, wind)
        wind_gust = wind_speed * (1.4 + 0.2 * cloud_fraction) + (3.0 if heavy else 0.0)
        wind_deg = (c.prevailing_deg + 35.0 * z["wind_dir"] + 180.0 * wet) % 360.0

        pressure = (1012.0 + c.pressure_sigma * z["pressure"] - 3.0 * (cloud_fraction - 0.5)
                    + 1.0 * math.cos(4 * math.pi * (hour - 10.0) / 24.0))

        sin_elevation = sun_elevation_sine(when, region.lat, region.lon)
        uvi = 12.5 * max(0.0, sin_elevation) ** 1.5 * (1 - 0.7 * cloud_fraction**2)
        visibility = 10000.0
        if raining:
            visibility = 4000.0 if heavy else 7000.0
        elif misty:
            visibility = 2500.0
        snowing = raining and temp <= 0.5
        main, description, icon = _sky(cloud_fraction, raining, heavy, misty, snowing)
        sunrise, sunset = sunrise_sunset(when, region.lat, region.lon)

        record = region_fields(region)
        record.update(
            observed_at=when,
            temp=round(temp, 2),
            feels_like=round(feels_like(temp, humidity, wind_speed), 2),
            humidity=round(humidity),
            pressure=round(pressure),
            dew_point=round(dew_point, 2),
            clouds=clouds,
            visibility=visibility,
            uvi=round(min(uvi, 20.0), 2),
            wind_speed=round(wind_speed, 2),
            wind_deg=round(wind_deg),
            wind_gust=round(wind_gust, 2),
            rain_1h=0.0 if snowing else precipitation,
            snow_1h=precipitation if snowing else 0.0,
            precipitation_reported=True,
            weather_main=main,
            weather_description=description,
            weather_icon=icon + ("d" if sin_elevation > 0 else "n"),
            sunrise=sunrise,
            sunset=sunset,
            timezone_offset=region.utc_offset_seconds,
        )
        return record


# --- fast mode (benchmarks, history) ------------------------------------------------------
def simulate_history(regions: list[Region], start: datetime, hours: float, seed: int = 42,
                     step_minutes: int = 60, batch_id: str | None = None) -> Iterator[Observation]:
    """Observations of every region every `step_minutes` in [start, start + hours), as fast as
    the CPU allows, in time order. `produced_at` is the simulated time; `batch_id` defaults to
    one id per time step."""
    if start.tzinfo is None:
        raise ValueError("start must carry a time zone (UTC)")
    models = [RegionSimulator(region, seed) for region in regions]
    step = timedelta(minutes=step_minutes)
    for i in range(int(hours * 60 // step_minutes)):
        when = (start + i * step).astimezone(timezone.utc)
        bid = batch_id or f"sim{seed}-{when:%Y%m%dT%H%M%SZ}"
        for model in models:
            yield Observation(**model.observe(when), source="simulator", batch_id=bid, produced_at=when)


T = TypeVar("T")


def throttle(items: Iterable[T], per_second: float | None) -> Iterator[T]:
    """Yield items at most `per_second` per second (None or 0: unthrottled)."""
    if not per_second:
        yield from items
        return
    began = time.perf_counter()
    for n, item in enumerate(items):
        due = began + n / per_second
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        yield item


# --- the producer source ---------------------------------------------------------------------
def _floor(when: datetime, step: timedelta) -> datetime:
    seconds = step.total_seconds()
    return datetime.fromtimestamp(when.timestamp() // seconds * seconds, timezone.utc)


class SimulatorSource(Source):
    """Accelerated clock: starts `simulator_backfill_hours` ago, one batch per
    `simulator_step_minutes` of simulated time, `simulator_speed` times faster than real time;
    once caught up with the wall clock, one live batch every `simulator_interval_seconds`
    with observed_at = now (to the second). `live_only` skips the back-fill (`--once`)."""

    name = "simulator"

    def __init__(self, settings: Settings, live_only: bool = False):
        self.seed = settings.simulator_seed
        self.step = timedelta(minutes=settings.simulator_step_minutes)
        self.speed = settings.simulator_speed
        self.live_interval = settings.simulator_interval_seconds
        self.backfill = timedelta(0) if live_only else timedelta(hours=settings.simulator_backfill_hours)
        self._models: dict[str, RegionSimulator] = {}
        self._started = False
        self._sim_time: datetime | None = None  # None once live

    @property
    def catching_up(self) -> bool:
        return self._sim_time is not None

    def interval_seconds(self) -> float:
        if self.catching_up:
            return self.step.total_seconds() / self.speed
        return self.live_interval

    def next_time(self, now: datetime) -> datetime:
        """The simulated instant of the next batch (advances the clock)."""
        if not self._started:
            self._started = True
            if self.backfill:
                self._sim_time = _floor(now - self.backfill, self.step)
        if self._sim_time is not None:
            when = self._sim_time
            self._sim_time = when + self.step
            if self._sim_time > now:
                self._sim_time = None
            return when
        return now.astimezone(timezone.utc).replace(microsecond=0)

    def fetch(self, regions: list[Region], now: datetime) -> SourceResult:
        when = self.next_time(now)
        records = []
        for region in regions:
            model = self._models.get(region.id)
            if model is None or model.region != region:
                model = self._models[region.id] = RegionSimulator(region, self.seed)
            records.append(model.observe(when))
        if when < now.replace(microsecond=0):
            return SourceResult(backfill=records)  # catching up: simulated history, not live weather
        return SourceResult(records=records)
