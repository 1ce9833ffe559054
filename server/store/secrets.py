"""Secrets at rest: Fernet tokens, with the key from WEBHOOKS_SECRET_KEY or a key file made
once beside the SQLite database."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class SecretKeyError(RuntimeError):
    """The key is missing, malformed, or cannot decrypt what is stored."""


class SecretBox:
    def __init__(
        self, key: str | bytes, source: str = "WEBHOOKS_SECRET_KEY", unsaved: Path | None = None
    ) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise SecretKeyError(
                f"{source} is not a Fernet key (32 url-safe base64-encoded bytes); "
                "make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            ) from None
        self.source = source
        self._key = key
        self._unsaved = unsaved  # a key file to write once the database is known to match

    def save(self) -> None:
        """Writes a newly made key to its file (mode 0600), once the store has proved the key
        fits the database: a start that fails leaves no key behind that fits nothing."""
        if self._unsaved is None:
            return
        key = self._key if isinstance(self._key, bytes) else self._key.encode()
        try:
            fd = os.open(self._unsaved, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            # Made meanwhile by another process starting on the same file: use that one.
            existing = self._unsaved.read_bytes().strip()
            self._fernet = Fernet(existing)
            self._key = existing
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(key)
        self._unsaved = None

    def seal(self, secret: str | None) -> str | None:
        return self._fernet.encrypt(secret.encode()).decode() if secret else None

    def open(self, token: str | None) -> str | None:
        if token is None:
            return None
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(
                f"the secret key from {self.source} cannot decrypt the webhook secrets stored in "
                "this database: start the server with the WEBHOOKS_SECRET_KEY (or key file) "
                "they were stored with"
            ) from None


def key_file_for(sqlite_path: str) -> Path:
    return Path(f"{sqlite_path}.key")


def open_box(configured: str | None, sqlite_path: str | None) -> SecretBox:
    """A SecretBox with the configured key; else, for an SQLite file, the key file beside it,
    or a new key that SecretBox.save() writes there once the database is known to match."""
    if configured:
        return SecretBox(configured)
    if sqlite_path is None:
        raise SecretKeyError(
            "WEBHOOKS_SECRET_KEY is required for this database (a key file is only made beside "
            "an SQLite database); set it to a Fernet key shared by every replica"
        )
    if sqlite_path == ":memory:":
        return SecretBox(Fernet.generate_key(), "a new in-memory key")
    path = key_file_for(sqlite_path)
    if path.exists():
        return SecretBox(path.read_bytes().strip(), f"the key file {path}")
    return SecretBox(
        Fernet.generate_key(), f"a new key (the key file {path} is missing)", unsaved=path
    )
