"""peerdb create|recreate|drop: manage the peer's PostgreSQL database itself.

Connects to the server's `postgres` maintenance database with the settings' credentials.
"""
import psycopg
from psycopg import sql
from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create (if missing), recreate or drop the peer's database."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["create", "recreate", "drop"])

    def handle(self, action, **options):
        db = settings.DATABASES["default"]
        params = {
            "host": db["HOST"],
            "port": db["PORT"],
            "user": db["USER"],
            "dbname": "postgres",
            "autocommit": True,
        }
        if db["PASSWORD"]:
            params["password"] = db["PASSWORD"]
        name = sql.Identifier(db["NAME"])
        with psycopg.connect(**params) as conn:
            if action in ("recreate", "drop"):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
            if action in ("create", "recreate"):
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]
                ).fetchone()
                if not exists:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
        self.stdout.write(f"database {db['NAME']}: {action} done")
