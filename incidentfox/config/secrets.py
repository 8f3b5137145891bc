"""Secrets in config: detection by key name, encryption at rest, and redaction on every read.

Stored documents keep secret strings as ``enc:v1:<fernet token>``. The run engine sees them decrypted
(``open_secrets``); every API read sees ``••••last4`` (``redact_secrets``). A write that sends back the
redacted form, or the same plaintext, keeps the stored ciphertext, so a GET-edit-PUT round trip never
destroys a secret.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from incidentfox.config.secret_names import has_url_password, is_secret_key
from incidentfox.errors import BadRequest

CIPHER_PREFIX = "enc:v1:"
MASK = "••••"


class MarkerInPlainValue(BadRequest):
    """A written value starts with the encryption marker but is not the ciphertext stored there."""


def load_or_create_key_material(configured: str | None, data_dir: Path) -> bytes:
    """The installation's secret key: ``INCIDENTFOX_SECRET_KEY`` or a key generated once into the data dir."""
    if configured:
        return configured.encode()
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    material = base64.urlsafe_b64encode(secrets.token_bytes(32))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(material + b"\n")
    return material


def derive_key(material: bytes, purpose: str) -> bytes:
    """A 32-byte key for one purpose, so the encryption and token-hash keys are independent."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(material)


class SecretsUnreadable(ValueError):
    """The database holds secrets sealed with another key: the installation's key changed or was lost."""


class SecretBox:
    """Encrypts and decrypts config secret values with a key derived from the installation key."""

    def __init__(self, material: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(derive_key(material, "incidentfox/config-secrets")))

    def encrypt(self, plaintext: str) -> str:
        return CIPHER_PREFIX + self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, stored: str) -> str:
        if not stored.startswith(CIPHER_PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored[len(CIPHER_PREFIX) :].encode()).decode()
        except InvalidToken as exc:
            raise SecretsUnreadable(
                "a stored secret cannot be decrypted with this INCIDENTFOX_SECRET_KEY (or the data "
                "directory's secret.key): the database was written with another key"
            ) from exc

    def seal(self, document: Any, current: Any) -> Any:
        """Encrypt the secrets of an incoming document, keeping ciphertexts whose value did not change."""
        return self._walk_seal(document, current, inside_secret=False)

    def open(self, document: Any) -> Any:
        """The document with every secret decrypted: for the run engine only."""
        return _map_ciphertexts(document, self.decrypt)

    def redact(self, document: Any) -> Any:
        """The document with every secret shown as ``••••last4``."""
        return _map_ciphertexts(document, lambda stored: redacted_form(self.decrypt(stored)))

    def _walk_seal(self, value: Any, current: Any, *, inside_secret: bool, path: str = "") -> Any:
        """Encrypt what is secret by key or by value; refuse a plain value that could pass for ciphertext.

        Only ``open`` ever interprets the marker, so a plain string starting with it would be taken
        for a ciphertext on every later read. Keeping it plain is impossible and encrypting it would
        change what the writer sees, so it is refused (the one exception: the very ciphertext already
        stored at that place, sent back unchanged).
        """
        if isinstance(value, str) and value.startswith(CIPHER_PREFIX) and value != current:
            raise MarkerInPlainValue(
                f"the value of `{path or '/'}` starts with `{CIPHER_PREFIX}`, the marker IncidentFox uses "
                "for encrypted secrets; change the value",
                code="reserved_prefix",
            )
        if isinstance(value, dict):
            current_map = current if isinstance(current, dict) else {}
            return {
                key: self._walk_seal(
                    item,
                    current_map.get(key),
                    inside_secret=inside_secret or is_secret_key(key),
                    path=f"{path}.{key}" if path else key,
                )
                for key, item in value.items()
            }
        if isinstance(value, list):
            current_items = current if isinstance(current, list) else []
            return [
                self._walk_seal(
                    item,
                    current_items[i] if i < len(current_items) else None,
                    inside_secret=inside_secret,
                    path=f"{path}[{i}]",
                )
                for i, item in enumerate(value)
            ]
        if isinstance(value, str) and (inside_secret or has_url_password(value)):
            if value == current and value.startswith(CIPHER_PREFIX):
                return current
            if isinstance(current, str) and current.startswith(CIPHER_PREFIX):
                plain = self.decrypt(current)
                if value in (plain, redacted_form(plain)):
                    return current
            return self.encrypt(value)
        return value


def redacted_form(plaintext: str) -> str:
    """``••••`` plus the last four characters, or only the mask for a short secret."""
    return MASK + plaintext[-4:] if len(plaintext) >= 12 else MASK


def _map_ciphertexts(value: Any, transform: Any) -> Any:
    if isinstance(value, dict):
        return {key: _map_ciphertexts(item, transform) for key, item in value.items()}
    if isinstance(value, list):
        return [_map_ciphertexts(item, transform) for item in value]
    if isinstance(value, str) and value.startswith(CIPHER_PREFIX):
        return transform(value)
    return value
