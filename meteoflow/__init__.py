"""Meteoflow's shared package: settings, the observation schema, JSON logging, Kafka clients."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("meteoflow")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
