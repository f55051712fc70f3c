"""The MongoDB client (pymongo), configured once. Natively the server is FerretDB."""

from __future__ import annotations

from pymongo import MongoClient
from pymongo.database import Database

from meteoflow.settings import Settings


def make_mongo_client(settings: Settings, **extra) -> MongoClient:
    options = dict(serverSelectionTimeoutMS=10_000, connectTimeoutMS=5_000, tz_aware=True)
    options.update(extra)
    return MongoClient(settings.mongo_uri, **options)


def database(settings: Settings, client: MongoClient | None = None) -> Database:
    return (client or make_mongo_client(settings))[settings.mongo_db]


def is_ferretdb(db: Database) -> bool:
    """Whether the server is FerretDB (natively) rather than MongoDB (Docker, METEOFLOW_MONGO_URI):
    FerretDB's buildInfo names its own version."""
    return "ferretdbVersion" in db.client.admin.command("buildInfo")
