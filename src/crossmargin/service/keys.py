"""API keys: one operator key and account keys scoped to one account, stored hashed.

* A key is 32 random bytes (``secrets.token_urlsafe``), so a single SHA-256 is enough to store it:
  there is nothing to brute-force that a slow hash would protect (unlike a password).
* The operator key comes from the environment (``CROSSMARGIN_OPERATOR_KEY``) or is generated on
  first start and shown once; only its hash is kept (in the key file).
* Account keys are issued by the operator (when opening an account, or to replace a lost key;
  issuing a new key revokes the account's previous one).
* A replaced or revoked key is announced to the ring's listeners (``on_revoke``), so the service
  can close the WebSockets that authenticated with it: a socket outlives no key.
* The key file is JSON ``{"operator": HASH | null, "accounts": {HASH: ACCOUNT}}``, written
  atomically with owner-only permissions (``write_private``). Without a file (tests) the ring
  lives in memory. The exchange credentials (``binance.credentials``) keep their key file the
  same way: ``key_hash``, ``write_private`` and ``HashedAccounts`` serve both.
* A principal names who sent a command (``operator`` or ``account:<id>``, see
  ``app.writer``): command ids are unique per principal, so one key can neither claim nor read
  the result of another key's command.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from crossmargin.app.writer import OPERATOR, account_principal
from crossmargin.core.errors import Forbidden, InvalidInput, StorageError, Unauthorized

OPERATOR_KEY_ENV = "CROSSMARGIN_OPERATOR_KEY"
KEY_PREFIX_OPERATOR = "op_"
KEY_PREFIX_ACCOUNT = "ak_"
MIN_OPERATOR_KEY_LENGTH = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who a request is: the operator, or the holder of one account's key."""

    operator: bool
    account: str | None = None
    credential: str = ""  # the key's hash: which sockets to close when that key is revoked

    @property
    def name(self) -> str:
        """Who sends this key's commands, for the engine: ``operator`` or ``account:<id>``."""
        if self.operator or self.account is None:
            return OPERATOR
        return account_principal(self.account)

    def may_read(self, account: str) -> bool:
        return self.operator or self.account == account

    def require_operator(self) -> None:
        if not self.operator:
            raise Forbidden("this route needs the operator key")

    def require_account(self, account: str) -> None:
        if not self.may_read(account):
            raise Forbidden("this key is scoped to another account")


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def write_private(path: Path, data: bytes, name: str) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file, fsynced, then renamed) with
    owner-only permissions; a failure is a ``StorageError`` naming ``name``."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        raise StorageError(f"cannot write {name}: {error}") from None


class HashedAccounts(ABC):
    """What the key stores share (this ring, and ``binance.credentials``): key hashes mapped to
    accounts, saved by ``_save``; an account holds one key at a time."""

    _accounts: dict[str, str]  # hash -> account

    @abstractmethod
    def _save(self) -> None: ...

    def _reassign(self, account: str, fresh: str | None) -> frozenset[str]:
        """Give ``account`` the key hash ``fresh`` alone (None: no key) and save; returns the
        hashes it loses. When saving fails nothing changes. Call it under the store's lock."""
        revoked = frozenset(h for h, a in self._accounts.items() if a == account)
        kept = {h: a for h, a in self._accounts.items() if a != account}
        if fresh is not None:
            kept[fresh] = account
        previous, self._accounts = self._accounts, kept
        try:
            self._save()
        except StorageError:
            self._accounts = previous
            raise
        return revoked


class KeyRing(HashedAccounts):
    """The hashed keys; thread-safe."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._operator: str | None = None
        self._accounts = {}
        self._listeners: list[Callable[[frozenset[str]], None]] = []
        if path is not None and path.exists():
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise StorageError(f"cannot read the key file {path}: {error}") from None
        if not isinstance(data, dict) or not isinstance(data.get("accounts", {}), dict):
            raise StorageError(f"the key file {path} is not a key ring")
        operator = data.get("operator")
        self._operator = operator if isinstance(operator, str) else None
        self._accounts = {str(k): str(v) for k, v in data.get("accounts", {}).items()}

    def _save(self) -> None:
        if self._path is None:
            return
        text = json.dumps({"operator": self._operator, "accounts": self._accounts}, indent=1)
        write_private(self._path, text.encode("utf-8"), f"the key file {self._path}")

    def ensure_operator(self, given: str | None) -> str | None:
        """Install the operator key; returns a newly generated key (to show once), else None.

        A key given by the environment replaces the stored hash; with none given, the stored hash
        stays; with neither, a key is generated.
        """
        with self._lock:
            if given is not None:
                if len(given.strip()) < MIN_OPERATOR_KEY_LENGTH or given != given.strip():
                    raise InvalidInput(
                        OPERATOR_KEY_ENV,
                        f"an operator key needs at least {MIN_OPERATOR_KEY_LENGTH} characters "
                        "and no surrounding spaces",
                    )
                self._operator = key_hash(given)
                self._save()
                return None
            if self._operator is not None:
                return None
            fresh = KEY_PREFIX_OPERATOR + secrets.token_urlsafe(32)
            self._operator = key_hash(fresh)
            self._save()
            return fresh

    def on_revoke(self, listener: Callable[[frozenset[str]], None]) -> Callable[[], None]:
        """Call ``listener`` with the hashes of the keys that stop working, when they stop;
        returns the function that removes it."""
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    def issue(self, account: str) -> str:
        """A new key for ``account``; the account's previous key stops working."""
        fresh = KEY_PREFIX_ACCOUNT + secrets.token_urlsafe(32)
        self._replace(account, key_hash(fresh))
        return fresh

    def revoke(self, account: str) -> bool:
        """``account``'s key stops working (no new one); False when it had none."""
        return bool(self._replace(account, None))

    def _replace(self, account: str, fresh: str | None) -> frozenset[str]:
        with self._lock:
            revoked = self._reassign(account, fresh)
            listeners = tuple(self._listeners)
        if revoked:
            for listener in listeners:
                listener(revoked)
        return revoked

    def current(self, credential: str) -> bool:
        """Whether the key with this hash still works."""
        with self._lock:
            return credential == self._operator or credential in self._accounts

    def resolve(self, key: str | None) -> Principal:
        """The principal of ``key``; Unauthorized when it is missing or matches nothing."""
        if not key:
            raise Unauthorized("an API key is required (Authorization: Bearer KEY)")
        digest = key_hash(key)
        with self._lock:
            operator = self._operator
            account = self._accounts.get(digest)
        if operator is not None and hmac.compare_digest(digest, operator):
            return Principal(operator=True, credential=digest)
        if account is not None:
            return Principal(operator=False, account=account, credential=digest)
        raise Unauthorized("the API key is not valid")
