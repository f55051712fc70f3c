"""The batch layer: Spark batch jobs over the Parquet archive (streaming/archive.py writes it).

`python -m batch recompute --from D --to D [--region R]` rebuilds hourly and daily statistics.
"""
