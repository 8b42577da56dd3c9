"""API keys, stored hashed (``auth.hash_key``); a revoked key keeps its row for the record."""

from __future__ import annotations

import sqlite3
import time

from .db import Database
from .models import new_id


class ApiKeys:
    """The API-key half of ``Store`` (a mixin: ``Store`` supplies ``db``)."""

    db: Database

    def add_api_key(self, user_id: str, key_hash: str, admin: bool = False) -> str:
        """Store a key's hash for ``user_id``; returns the key's id (never the key)."""
        key_id = new_id()
        with self.db.tx() as db:
            db.execute(
                "INSERT INTO api_keys (id, user_id, key_hash, admin, created) VALUES (?,?,?,?,?)",
                (key_id, user_id, key_hash, int(admin), time.time()),
            )
        return key_id

    def find_api_key(self, key_hash: str) -> sqlite3.Row | None:
        """The active key with this hash, if any."""
        rows = self.db.read(
            "SELECT * FROM api_keys WHERE key_hash=? AND revoked_at IS NULL", (key_hash,)
        )
        return rows[0] if rows else None

    def list_api_keys(self) -> list[sqlite3.Row]:
        """Every key, revoked ones included, without hashes."""
        return self.db.read(
            "SELECT id, user_id, admin, created, revoked_at FROM api_keys ORDER BY created"
        )

    def revoke_api_key(self, key_id: str) -> bool:
        """Revoke one key by id, or every key of a user; False if nothing was active."""
        with self.db.tx() as db:
            return bool(
                db.execute(
                    "UPDATE api_keys SET revoked_at=? WHERE (id=? OR user_id=?) "
                    "AND revoked_at IS NULL",
                    (time.time(), key_id, key_id),
                ).rowcount
            )

    def api_key_active(self, key_id: str) -> bool:
        return bool(
            self.db.read("SELECT 1 FROM api_keys WHERE id=? AND revoked_at IS NULL", (key_id,))
        )

    def has_api_keys(self) -> bool:
        return bool(self.db.read("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1"))

    def ever_had_api_keys(self) -> bool:
        """Whether any key was ever created, revoked ones included (key mode is sticky)."""
        return bool(self.db.read("SELECT 1 FROM api_keys LIMIT 1"))
