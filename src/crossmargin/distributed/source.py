"""Where a shard's book comes from, so that a lost shard can be rebuilt from it.

A source is a small frozen value (it travels to every actor and is kept by Ray for restarts);
``load()`` returns the whole book as :class:`~crossmargin.batch.convert.BookArrays`, from which a
shard takes its accounts. Three kinds:

* :class:`PortfolioFile`: a portfolio JSON file of the risk contract (one portfolio or a list),
  read with the same parser as ``crossmargin risk``/``stress`` (numbers as ``Decimal``, then the
  one converter);
* :class:`Snapshot`: the arrays of a converted book saved by :func:`save_snapshot` (``.npz``,
  no pickle), the fast way to ship a large book: convert once, load in about a second;
* :class:`Synthetic`: ``synthetic_book(positions, seed)``, reproducible from the seed.

A path must be readable from every node that may host a shard (a shared file system or a copy on
each node): the actor reads it when it starts and again when it is restarted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from crossmargin.batch.convert import BookArrays, BracketTables, assemble, from_books
from crossmargin.batch.synthetic import synthetic_book
from crossmargin.contract.portfolio import parse_portfolio
from crossmargin.core.errors import InvalidInput
from crossmargin.core.json_input import load_json, one_or_many

MAX_BOOK_BYTES = 1 << 30  # a book file is the user's own: up to 1 GiB


class BookSource(Protocol):
    def load(self) -> BookArrays: ...

    def describe(self) -> str: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Synthetic:
    positions: int
    seed: int = 0

    def load(self) -> BookArrays:
        return synthetic_book(self.positions, seed=self.seed).arrays

    def describe(self) -> str:
        return f"synthetic book (seed {self.seed})"


def _read_text(path: str) -> str:
    file = Path(path)
    if file.is_dir():
        raise InvalidInput("BOOK", f"{path} is a directory; give a portfolio JSON file")
    if not file.is_file():
        raise InvalidInput("BOOK", f"no such file: {path}")
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput("BOOK", f"cannot read {path}: {error}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class PortfolioFile:
    path: str

    def load(self) -> BookArrays:
        document = load_json(_read_text(self.path), field=self.path, max_bytes=MAX_BOOK_BYTES)
        if document == []:
            raise InvalidInput("BOOK", "the list holds no portfolio")
        books = one_or_many(document, parse_portfolio, field="BOOK")
        return from_books(books if isinstance(books, list) else [books])

    def describe(self) -> str:
        return self.path


_TABLE_FIELDS = ("caps", "rates", "amounts", "counts", "continuous", "max_leverage")
_COLUMNS = ("side", "quantity", "entry_notional", "inverse_leverage", "collateral", "close_fee")
_ARRAYS = (
    "marks",
    "account",
    "symbol",
    "instrument",
    "isolated",
    "maintenance_at_entry",
    "partner",
    "wallet",
    "account_start",
)


def save_snapshot(arrays: BookArrays, path: str) -> None:
    """Write a converted book's arrays to ``path`` (numpy ``.npz``, uncompressed, no pickle)."""
    fields: dict[str, Any] = {"symbols": np.array(arrays.symbols, dtype=np.str_)}
    for name in (*_ARRAYS, *_COLUMNS):
        fields[name] = getattr(arrays, name)
    for name in _TABLE_FIELDS:
        fields[f"tables_{name}"] = getattr(arrays.tables, name)
    with Path(path).open("wb") as file:
        np.savez(file, **fields)


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    path: str

    def load(self) -> BookArrays:
        if not Path(self.path).is_file():
            raise InvalidInput("BOOK", f"no such file: {self.path}")
        try:
            with np.load(self.path, allow_pickle=False) as data:
                fields = {name: data[name] for name in data.files}
        except (OSError, ValueError) as error:
            raise InvalidInput("BOOK", f"not a book snapshot: {self.path}: {error}") from None
        expected = {"symbols", *_ARRAYS, *_COLUMNS, *(f"tables_{n}" for n in _TABLE_FIELDS)}
        missing = sorted(expected - set(fields))
        if missing:
            raise InvalidInput("BOOK", f"snapshot {self.path} lacks {', '.join(missing)}")
        tables = BracketTables(**{name: fields[f"tables_{name}"] for name in _TABLE_FIELDS})
        return assemble(
            symbols=tuple(str(s) for s in fields["symbols"]),
            tables=tables,
            columns={name: fields[name] for name in _COLUMNS},
            **{name: fields[name] for name in _ARRAYS},
        )

    def describe(self) -> str:
        return self.path
