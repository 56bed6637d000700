"""The results store: one SQLite file (WAL mode), table ``runs``, one row per run.

    id        TEXT PRIMARY KEY    hash of the config (lstmlab.sweep.spec.run_id)
    sweep     TEXT                the spec's name
    config    TEXT                the full TrainConfig as JSON
    status    TEXT                pending | running | done | failed | diverged
    metrics   TEXT                the final metrics (JSON), per-evaluation ones in metrics.jsonl
    started, finished REAL        Unix times; wall_s REAL the run's own training time
    run_dir   TEXT                the run folder
    error     TEXT                why a run failed or diverged

Every write is one transaction; readers never see half a sweep's update. A killed sweep
leaves ``running`` rows, which the next run of the spec resumes.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time

__all__ = ["Store", "STATUSES"]

STATUSES = ("pending", "running", "done", "failed", "diverged")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, sweep TEXT NOT NULL, config TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'diverged')),
    metrics TEXT, started REAL, finished REAL, wall_s REAL, run_dir TEXT, error TEXT)
"""


class Store:
    """``Store(path)`` opens (or creates) the database; ValueError for a path that cannot be."""

    def __init__(self, path):
        path = os.fspath(path)
        if os.path.isdir(path):
            raise ValueError(f"--db: {path} is a directory, expected a database file")
        folder = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise ValueError(f"--db: cannot create the folder {folder} ({e.strerror})") from None
        if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
            raise ValueError(f"--db: {path} is not writable")
        self.path = path
        try:
            self.conn = sqlite3.connect(path, timeout=30, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise ValueError(f"--db: {path} is not an SQLite database ({e})") from None
        self.conn.row_factory = sqlite3.Row

    def _tx(self, sql_params: list[tuple[str, tuple]]) -> None:
        with self.conn:                                   # BEGIN ... COMMIT, or ROLLBACK
            self.conn.execute("BEGIN IMMEDIATE")
            for sql, params in sql_params:
                self.conn.execute(sql, params)

    def add(self, sweep: str, runs: list[tuple[str, dict, str]]) -> None:
        """Insert ``(id, config, run_dir)`` rows as pending; rows that exist are kept."""
        self._tx([("INSERT OR IGNORE INTO runs (id, sweep, config, status, run_dir) "
                   "VALUES (?, ?, ?, 'pending', ?)", (rid, sweep, json.dumps(cfg, sort_keys=True), d))
                  for rid, cfg, d in runs])

    def mark_running(self, ids: list[str]) -> None:
        now = time.time()
        self._tx([("UPDATE runs SET status = 'running', started = ?, error = NULL WHERE id = ?",
                   (now, rid)) for rid in ids])

    def finish(self, rid: str, status: str, metrics: dict | None, wall_s: float | None,
               error: str | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"status: expected one of {STATUSES}, got {status!r}")
        self._tx([("UPDATE runs SET status = ?, metrics = ?, finished = ?, wall_s = ?, error = ? "
                   "WHERE id = ?", (status, json.dumps(metrics or {}, sort_keys=True), time.time(),
                                    wall_s, error, rid))])

    def rows(self, ids: list[str] | None = None, sweep: str | None = None) -> list[dict]:
        """Rows as dicts with ``config`` and ``metrics`` decoded, in insertion order."""
        sql, params = "SELECT * FROM runs", []
        if sweep is not None:
            sql, params = sql + " WHERE sweep = ?", [sweep]
        out = []
        for r in self.conn.execute(sql + " ORDER BY rowid", params):
            d = dict(r)
            d["config"] = json.loads(d["config"])
            d["metrics"] = json.loads(d["metrics"]) if d["metrics"] else {}
            out.append(d)
        if ids is not None:
            by = {d["id"]: d for d in out}
            out = [by[i] for i in ids if i in by]
        return out

    def close(self) -> None:
        self.conn.close()
