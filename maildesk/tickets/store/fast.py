"""Pre-rendered SQL for the few statements the pipeline runs for every message.

Peewee renders a query's SQL from its expression tree on every execution, which costs
more than SQLite takes to run the statement. The record and thread stages run the same
handful of statement shapes for every message, so their SQL is rendered once, by peewee
itself, and reused with new parameters. Everything else uses the ORM as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from peewee import Database, Model

from maildesk.tickets.store.models import BaseModel

_M = TypeVar("_M", bound=BaseModel)


class Statements:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._sql: dict[tuple[Any, ...], Any] = {}

    def insert(self, model: type[Model], values: Mapping[str, Any]) -> int:
        """INSERT one row and return its id; the SQL is rendered once per model and key set."""
        fields = model._meta.fields
        primary_key = model._meta.primary_key
        # peewee's False for a model without one; every model here has a primary key
        assert primary_key is not False, f"{model.__name__} has no primary key"
        key = ("insert", model, tuple(values))
        sql = self._sql.get(key)
        columns = [
            f
            for f in model._meta.sorted_fields
            if f.name in values or (f.default is not None and not f.primary_key)
        ]
        params = [
            f.db_value(
                values[f.name] if f.name in values else (f.default() if callable(f.default) else f.default)
            )
            for f in columns
        ]
        if sql is None:
            insert = model.insert({fields[name]: value for name, value in values.items()})
            if self.database.returning_clause:
                insert = insert.returning(primary_key)
            sql, rendered = insert.sql()
            if len(rendered) != len(params):  # our column order must be peewee's
                raise AssertionError(f"insert of {model.__name__}: {len(rendered)} != {len(params)}")
            self._sql[key] = sql
        cursor = self.database.execute_sql(sql, params)
        if primary_key.name in values:  # a natural key (RawMail's sha256): the caller has it
            return values[primary_key.name]  # type: ignore[no-any-return]
        if self.database.returning_clause:
            return int(cursor.fetchone()[0])
        return int(cursor.lastrowid)

    def query(
        self, name: str, build: Callable[[int], Any], params: Sequence[Any], arity: int = 0
    ) -> list[tuple[Any, ...]]:
        """Run a SELECT rendered once per (name, arity) by `build(arity)`; rows as tuples."""
        key = ("query", name, arity)
        cached = self._sql.get(key)
        if cached is None:
            sql, rendered = build(arity).sql()
            # our parameters come first; what peewee renders after them (LIMIT) stays as rendered
            cached = self._sql[key] = (sql, tuple(rendered[len(params) :]))
        sql, tail = cached
        return list(self.database.execute_sql(sql, [*params, *tail]).fetchall())

    def execute(self, name: str, build: Callable[[], Any], params: Sequence[Any]) -> int:
        """Run an UPDATE or DELETE rendered once by `build()`; returns the rows changed."""
        key = ("execute", name)
        sql = self._sql.get(key)
        if sql is None:
            sql, _ = build().sql()
            self._sql[key] = sql
        return int(self.database.execute_sql(sql, list(params)).rowcount)

    def get(
        self,
        model: type[_M],
        name: str,
        build: Callable[[int], Any],
        params: Sequence[Any],
        arity: int = 0,
    ) -> list[_M]:
        """Model instances from a SELECT of all the model's columns, rendered once."""
        fields = model._meta.sorted_fields
        rows = self.query(name, build, params, arity)
        instances = []
        for row in rows:
            instance = model(**{f.name: f.python_value(v) for f, v in zip(fields, row, strict=True)})
            instance._dirty.clear()  # as loaded: a later save() writes only what changes
            instances.append(instance)
        return instances
