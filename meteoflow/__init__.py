"""Meteoflow's shared package: settings, the observation schema, JSON logging, Kafka clients."""
