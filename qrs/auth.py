"""API keys, bearer tokens and the current user of a request.

Open mode accepts any token and treats everyone as one shared user; it lasts only until
the first key exists (``QRS_AUTH=auto``, the default) or is chosen outright
(``QRS_AUTH=open``). In key mode ``POST /identity/token`` exchanges a key for a signed,
expiring JWT (HS256 with a secret kept in the data directory) and every API call must
carry a valid one. Key mode is sticky: revoking the last key, or a keys file that went
missing, leaves nobody able to sign in rather than everybody. Keys are stored hashed; a
key created or revoked with ``qrs keys`` takes effect at once in a running server.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from .errors import StartupError, Unauthorized
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


#: Shortest signing secret accepted (HS256 wants at least its 32-byte output size).
MIN_SECRET_BYTES = 32

_HASHED = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class KeysFile:
    """The parsed ``QRS_API_KEYS_FILE``: key hash → user, and what went wrong reading it."""

    keys: dict[str, User]
    error: str = ""  # why the file could not be read; its keys are then refused


def parse_keys_file(text: str) -> tuple[dict[str, User], list[str]]:
    """``user:key[:admin]`` or ``user:sha256:<64 hex digits>[:admin]`` lines; ``#``
    comments. Returns the keys and a problem per line skipped (never the key itself)."""
    keys, problems = {}, []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) >= 3 and parts[1] == "sha256" and _HASHED.fullmatch(parts[2].lower()):
            user, digest, role = parts[0], parts[2].lower(), parts[3:]
        elif len(parts) >= 2:
            user, digest, role = parts[0], hash_key(parts[1]) if parts[1] else "", parts[2:]
        else:
            user, digest, role = "", "", []
        if not user.strip() or not digest:
            problems.append(f"line {number} skipped: it needs a user and a non-empty key")
            continue
        keys[digest] = User(user.strip(), role[:1] == ["admin"])
    return keys, problems


class Auth:
    """Issues and verifies tokens against the keys in the store and the keys file.

    ``mode`` (``QRS_AUTH``): ``keys`` always asks for a key; ``open`` never does;
    ``auto`` is open only while no key has ever existed — once a key is created (even if
    later revoked) or a keys file is configured (even if missing or unreadable), the
    server stays in key mode, so revoking the last key cannot turn authentication off.
    """

    def __init__(
        self,
        store: Store,
        data_dir: str,
        keys_file: str = "",
        token_ttl_seconds: int = 3600,
        mode: str = "auto",
    ) -> None:
        self.store = store
        self.keys_file = Path(keys_file) if keys_file else None
        self.token_ttl = token_ttl_seconds
        self.mode = mode
        self._key_mode_seen = mode == "keys" or bool(keys_file)
        self._file_cache: tuple[tuple, KeysFile] | None = None
        self.secret = load_secret(Path(data_dir) / "secret.key")

    def check_at_start(self) -> None:
        """Log, at start-up, what is wrong with the keys file (fails closed, not open)."""
        if self.keys_file is None:
            return
        parsed = self._file_keys()
        if parsed.error:
            log.error(
                "QRS_API_KEYS_FILE=%s cannot be read (%s): none of its keys is "
                "accepted, and the server stays in key mode.",
                self.keys_file,
                parsed.error,
            )

    def _file_keys(self) -> KeysFile:
        """The keys file, re-read when it changes (so edits apply at once)."""
        if self.keys_file is None:
            return KeysFile({})
        stamp: tuple
        info: os.stat_result | None
        try:
            info = self.keys_file.stat()
            stamp = (info.st_mtime_ns, info.st_size, info.st_ino, info.st_mode)
        except OSError as exc:
            stamp, info = ("missing", exc.strerror), None
        if self._file_cache is not None and self._file_cache[0] == stamp:
            return self._file_cache[1]
        parsed = self._read_keys_file(self.keys_file, info)
        self._file_cache = (stamp, parsed)
        return parsed

    @staticmethod
    def _read_keys_file(path: Path, info: os.stat_result | None) -> KeysFile:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            log.error(
                "QRS_API_KEYS_FILE=%s cannot be read (%s); its keys are refused.", path, reason
            )
            return KeysFile({}, reason)
        if info is not None and info.st_mode & 0o077:
            log.warning(
                "QRS_API_KEYS_FILE=%s is readable by other users (mode %o); "
                "'chmod 600' it, or list hashed keys (user:sha256:<hex>).",
                path,
                info.st_mode & 0o777,
            )
        keys, problems = parse_keys_file(text)
        for problem in problems:
            log.warning("QRS_API_KEYS_FILE=%s: %s.", path, problem)
        return KeysFile(keys)

    @property
    def open_mode(self) -> bool:
        """Whether every caller is the shared admin user (see the class docstring).

        Key mode, once seen, is remembered: no store read on later requests.
        """
        if self.mode == "open":
            return True
        if self._key_mode_seen:
            return False
        if self.store.ever_had_api_keys():
            self._key_mode_seen = True
            return False
        return True

    def user_for_key(self, key: str) -> tuple[User, str]:
        """The user a key belongs to and the key's id (``file:<hash prefix>`` for file keys)."""
        digest = hash_key(key)
        row = self.store.find_api_key(digest)
        if row is not None:
            return User(row["user_id"], bool(row["admin"])), row["id"]
        user = self._file_keys().keys.get(digest)
        if user is None:
            raise Unauthorized(
                "Invalid API key: it is unknown or was revoked. Ask the server's "
                "operator for a key ('qrs keys create --user NAME')."
            )
        return user, "file:" + digest[:16]

    def _key_active(self, key_id: str) -> bool:
        """A revoked key's tokens stop working at once, not when they expire."""
        if key_id.startswith("file:"):
            return any(h.startswith(key_id[5:]) for h in self._file_keys().keys)
        return self.store.api_key_active(key_id)

    def issue_token(self, key: str) -> dict:
        """The IAM-style token answer the client expects."""
        user, key_id = (User(SHARED_USER), "") if self.open_mode else self.user_for_key(key)
        now = int(time.time())
        claims = {
            "sub": user.id,
            "admin": user.admin,
            "iat": now,
            "exp": now + self.token_ttl,
            "kid": key_id,
        }
        token = jwt.encode(claims, self.secret, algorithm="HS256")
        return {
            "access_token": token,
            "refresh_token": "not_supported",
            "token_type": "Bearer",
            "expires_in": self.token_ttl,
            "expiration": now + self.token_ttl,
            "scope": "ibm openid",
        }

    def user_for_header(self, header: str | None) -> User:
        """Verify ``Authorization: Bearer <token>``; raise ``Unauthorized`` with the reason."""
        if self.open_mode:
            return User(SHARED_USER, admin=True)
        if not header:
            raise Unauthorized(
                "Missing Authorization header; the client sends "
                "'Bearer <token>' obtained from POST /identity/token."
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "apikey":
            return self.user_for_key(token.strip())[0]
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Malformed Authorization header; expected 'Bearer <token>'.")
        try:
            claims = jwt.decode(
                token.strip(),
                self.secret,
                algorithms=["HS256"],
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized(
                "The access token has expired; the client fetches a new one "
                "from POST /identity/token."
            ) from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"Invalid access token: {exc}.") from None
        key_id = str(claims.get("kid", ""))
        if not key_id:
            raise Unauthorized(
                "This token was issued before the server had API keys; "
                "connect again with an API key."
            )
        if not self._key_active(key_id):
            raise Unauthorized("The API key behind this token was revoked.")
        return User(str(claims["sub"]), bool(claims.get("admin")))


def load_secret(path: Path) -> bytes:
    """The per-installation signing secret, created once with owner-only permissions.

    Created as a synced temporary file linked into place, so a worker starting at the
    same moment either finds no file (and links its own, losing the race harmlessly) or
    a complete one, never an empty one. A secret shorter than ``MIN_SECRET_BYTES`` is
    refused: tokens signed with it could be forged by guessing it.
    """
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
                fh.flush()
                os.fsync(fh.fileno())
            os.link(tmp, path)
        except FileExistsError:
            pass  # another worker linked its secret first: use that one
        finally:
            tmp.unlink(missing_ok=True)
    secret = path.read_bytes().strip()
    if len(secret) < MIN_SECRET_BYTES:
        raise StartupError(
            f"{path} holds a {len(secret)}-byte signing secret; at least {MIN_SECRET_BYTES} "
            "bytes are needed. Delete the file to have a new one made (tokens signed with "
            "the old one stop working)."
        )
    return secret
