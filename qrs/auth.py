"""API keys, bearer tokens and the current user of a request.

Open mode — no key configured in the store or in ``QRS_API_KEYS_FILE`` — accepts any
token and treats everyone as one shared user. Once a key exists, ``POST /identity/token``
exchanges a key for a signed, expiring JWT (HS256 with a secret kept in the data
directory) and every API call must carry a valid one. Keys are stored hashed; a key
created or revoked with ``qrs keys`` takes effect at once in a running server.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from .errors import Unauthorized
from .store import Store

log = logging.getLogger(__name__)

SHARED_USER = "shared"


@dataclass(frozen=True)
class User:
    """Who is calling: a user id, and whether they may see everyone's work."""

    id: str
    admin: bool = False


def can_see(user: User, owner_id: str) -> bool:
    """Whether ``user`` may see a job or session of ``owner_id``'s (admins see everyone's)."""
    return user.admin or user.id == owner_id


def is_loopback(host: str) -> bool:
    """Whether a bind address is reachable only from this machine (names other than
    ``localhost`` count as exposed: resolving them at start-up could block)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def hash_key(key: str) -> str:
    """Keys are high-entropy random strings, so a plain SHA-256 is the right hash."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh API key: 256 random bits, ``qrs_``-prefixed so a leaked one is recognisable."""
    return "qrs_" + secrets.token_urlsafe(32)


class Auth:
    """Issues and verifies tokens against the keys in the store and the keys file."""

    def __init__(self, store: Store, data_dir: str, keys_file: str = "",
                 token_ttl_seconds: int = 3600) -> None:
        self.store = store
        self.keys_file = Path(keys_file) if keys_file else None
        self.token_ttl = token_ttl_seconds
        self.secret = self._load_secret(Path(data_dir) / "secret.key")

    @staticmethod
    def _load_secret(path: Path) -> bytes:
        """A per-installation signing secret, created once with owner-only permissions."""
        if not path.exists():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_hex(32))
            except FileExistsError:
                pass  # another worker created it first
        return path.read_text().strip().encode()

    def _file_keys(self) -> dict[str, User]:
        """``QRS_API_KEYS_FILE``: lines of ``user:key`` (``user:key:admin`` for admins)."""
        if not self.keys_file or not self.keys_file.exists():
            return {}
        keys = {}
        for line in self.keys_file.read_text().splitlines():
            parts = line.strip().split(":")
            if len(parts) >= 2 and not line.lstrip().startswith("#"):
                keys[hash_key(parts[1])] = User(parts[0], len(parts) > 2 and parts[2] == "admin")
        return keys

    @property
    def open_mode(self) -> bool:
        """No key anywhere: every caller is the shared admin user (read on each call, so
        the first ``qrs keys create`` ends open mode in a running server)."""
        return not self.store.has_api_keys() and not self._file_keys()

    def user_for_key(self, key: str) -> tuple[User, str]:
        """The user a key belongs to and the key's id (``file:<hash prefix>`` for file keys)."""
        digest = hash_key(key)
        row = self.store.find_api_key(digest)
        if row is not None:
            return User(row["user_id"], bool(row["admin"])), row["id"]
        user = self._file_keys().get(digest)
        if user is None:
            raise Unauthorized("Invalid API key: it is unknown or was revoked. Ask the server's "
                               "operator for a key ('qrs keys create --user NAME').")
        return user, "file:" + digest[:16]

    def _key_active(self, key_id: str) -> bool:
        """A revoked key's tokens stop working at once, not when they expire."""
        if key_id.startswith("file:"):
            return any(h.startswith(key_id[5:]) for h in self._file_keys())
        return self.store.api_key_active(key_id)

    def issue_token(self, key: str) -> dict:
        """The IAM-style token answer the client expects."""
        user, key_id = (User(SHARED_USER), "") if self.open_mode else self.user_for_key(key)
        now = int(time.time())
        claims = {"sub": user.id, "admin": user.admin, "iat": now, "exp": now + self.token_ttl,
                  "kid": key_id}
        token = jwt.encode(claims, self.secret, algorithm="HS256")
        return {"access_token": token, "refresh_token": "not_supported", "token_type": "Bearer",
                "expires_in": self.token_ttl, "expiration": now + self.token_ttl,
                "scope": "ibm openid"}

    def user_for_header(self, header: str | None) -> User:
        """Verify ``Authorization: Bearer <token>``; raise ``Unauthorized`` with the reason."""
        if self.open_mode:
            return User(SHARED_USER, admin=True)
        if not header:
            raise Unauthorized("Missing Authorization header; the client sends "
                               "'Bearer <token>' obtained from POST /identity/token.")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "apikey":
            return self.user_for_key(token.strip())[0]
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Malformed Authorization header; expected 'Bearer <token>'.")
        try:
            claims = jwt.decode(token.strip(), self.secret, algorithms=["HS256"],
                                options={"require": ["exp", "iat", "sub"]})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The access token has expired; the client fetches a new one "
                               "from POST /identity/token.") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"Invalid access token: {exc}.") from None
        key_id = str(claims.get("kid", ""))
        if not key_id:
            raise Unauthorized("This token was issued before the server had API keys; "
                               "connect again with an API key.")
        if not self._key_active(key_id):
            raise Unauthorized("The API key behind this token was revoked.")
        return User(str(claims["sub"]), bool(claims.get("admin")))

