"""Exchange credentials for the Binance facade: an API key and an HMAC secret per account.

Binance signs requests with HMAC-SHA256 keyed by the account's secret, so the server needs the
raw secret to check a signature: it cannot keep only a one-way hash of it, as it does for the
bearer keys of ``service.keys``. Instead nothing secret is stored per account:

* a **master secret** (32 random bytes) lives in one owner-only file (``exchange-master.key``
  under the var folder, created on first use) or comes from ``CROSSMARGIN_EXCHANGE_MASTER_KEY``
  (64 hex digits);
* an account's **secret** is derived, never stored: ``HMAC-SHA256(master, api_key)`` in hex;
* the key file (``exchange-keys.json``, owner-only, written atomically) maps
  ``SHA-256(api_key)`` to the account. A request's ``X-MBX-APIKEY`` is hashed, looked up, and
  the secret re-derived to check the signature.

Issuing credentials for an account revokes its previous ones (their hash leaves the file). The
secret is returned once, by the operator route, and is never logged. Without files (tests) the
store lives in memory with a random master secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import string
import threading
from dataclasses import dataclass
from pathlib import Path

from crossmargin.core.errors import InvalidInput, StorageError
from crossmargin.service.keys import HashedAccounts, key_hash, write_private

MASTER_ENV = "CROSSMARGIN_EXCHANGE_MASTER_KEY"
MASTER_BYTES = 32
API_KEY_LENGTH = 64  # Binance API keys are 64 letters and digits
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class Issued:
    """Credentials as shown once to the operator."""

    account: str
    api_key: str
    secret: str


def parse_master(text: str, source: str) -> bytes:
    """A master secret given as 64 hex digits."""
    cleaned = text.strip()
    try:
        master = bytes.fromhex(cleaned)
    except ValueError:
        master = b""
    if len(master) != MASTER_BYTES:
        raise InvalidInput(source, f"expected {2 * MASTER_BYTES} hex digits (32 random bytes)")
    return master


def load_master(path: Path | None, given: str | None) -> bytes:
    """The master secret: from the environment, else the file (created when missing)."""
    if given:
        return parse_master(given, MASTER_ENV)
    if path is None:
        return secrets.token_bytes(MASTER_BYTES)
    if path.exists():
        try:
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as error:
            raise StorageError(f"cannot read the master secret {path}: {error}") from None
        return parse_master(text, str(path))
    master = secrets.token_bytes(MASTER_BYTES)
    write_private(path, master.hex().encode("ascii") + b"\n", str(path))
    return master


class ExchangeCredentials(HashedAccounts):
    """API key hashes -> accounts, and the master secret that derives each account's secret."""

    def __init__(self, master: bytes, path: Path | None = None) -> None:
        if len(master) != MASTER_BYTES:
            raise InvalidInput("master", f"the master secret must be {MASTER_BYTES} bytes")
        self._master = master
        self._path = path
        self._lock = threading.Lock()
        self._accounts = {}  # SHA-256(api key) -> account
        if path is not None and path.exists():
            self._load(path)

    @classmethod
    def in_memory(cls) -> ExchangeCredentials:
        return cls(secrets.token_bytes(MASTER_BYTES))

    @classmethod
    def open(
        cls, folder: Path, given_master: str | None = None, keys_name: str = "exchange-keys.json"
    ) -> ExchangeCredentials:
        """The store under ``folder``: the key file and ``exchange-master.key``."""
        master = load_master(folder / "exchange-master.key", given_master)
        return cls(master, folder / keys_name)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise StorageError(f"cannot read the exchange key file {path}: {error}") from None
        accounts = data.get("accounts") if isinstance(data, dict) else None
        if not isinstance(accounts, dict):
            raise StorageError(f"the exchange key file {path} holds no accounts map")
        self._accounts = {str(k): str(v) for k, v in accounts.items()}

    def _save(self) -> None:
        if self._path is not None:
            text = json.dumps({"accounts": self._accounts}, indent=1, sort_keys=True)
            write_private(self._path, text.encode("utf-8"), str(self._path))

    def secret_for(self, api_key: str) -> str:
        """The secret that signs ``api_key``'s requests (derived; never stored)."""
        return hmac.new(self._master, api_key.encode("utf-8"), hashlib.sha256).hexdigest()

    def issue(self, account: str) -> Issued:
        """New credentials for ``account``; its previous ones stop working."""
        api_key = "".join(secrets.choice(_ALPHABET) for _ in range(API_KEY_LENGTH))
        with self._lock:
            self._reassign(account, key_hash(api_key))
        return Issued(account=account, api_key=api_key, secret=self.secret_for(api_key))

    def account_of(self, api_key: str) -> str | None:
        """The account ``api_key`` belongs to, or None for a key this server never issued."""
        digest = key_hash(api_key)
        with self._lock:
            return self._accounts.get(digest)
