"""Per-app SQLAlchemy engine and per-request sessions for Flask (CONVENTIONS.md §2)."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from corridor.db import make_engine, make_session_factory


class Database:
    """Engine and per-request sessions for one Flask app (CONVENTIONS.md §2)."""

    def init_app(self, app: Flask, url: str) -> None:
        """Create the engine for ``url`` and close the request session on teardown."""
        engine = make_engine(url)
        app.extensions["corridor_db"] = (engine, make_session_factory(engine))
        app.teardown_appcontext(self._teardown)

    @property
    def engine(self) -> Engine:
        """The current app's engine."""
        engine: Engine = current_app.extensions["corridor_db"][0]
        return engine

    def session(self) -> Session:
        """The session of the current request (created on first use)."""
        if "db_session" not in g:
            factory: sessionmaker[Session] = current_app.extensions["corridor_db"][1]
            g.db_session = factory()
        session: Session = g.db_session
        return session

    @staticmethod
    def _teardown(_exc: Any) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()

