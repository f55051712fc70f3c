"""Kafka -> Elasticsearch shipper: the native stand-in for Logstash (see elk/logstash/)."""
