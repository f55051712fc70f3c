"""Meteoflow producer: weather of every region, on a schedule, to Kafka (`python -m producer`)."""
