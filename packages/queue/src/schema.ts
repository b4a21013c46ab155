import type { DatabaseSync } from 'node:sqlite';

/**
 * The jobs table. Times are epoch milliseconds; params/progress/outputs are JSON text. The CHECK constraint
 * pins the status vocabulary (the reference core wrote `done` into a table whose CHECK only allowed `completed`).
 * `user_version` versions the schema so later migrations can be applied in order.
 */
export const SCHEMA_VERSION = 2;

const MIGRATIONS: Record<number, string> = {
  1: `
    CREATE TABLE IF NOT EXISTS jobs (
      id            INTEGER PRIMARY KEY AUTOINCREMENT,
      name          TEXT,
      status        TEXT NOT NULL CHECK (status IN ('queued','running','completed','failed','cancelled')),
      params        TEXT NOT NULL CHECK (json_valid(params)),
      priority      INTEGER NOT NULL DEFAULT 0,
      attempts      INTEGER NOT NULL DEFAULT 0,
      max_attempts  INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
      progress      TEXT NOT NULL DEFAULT '{"fraction":0}',
      outputs       TEXT NOT NULL DEFAULT '[]',
      error         TEXT,
      owner         TEXT,
      owner_host    TEXT,
      owner_pid     INTEGER,
      owner_start   TEXT,
      lease_until   INTEGER,
      heartbeat_at  INTEGER,
      created_at    INTEGER NOT NULL,
      updated_at    INTEGER NOT NULL,
      started_at    INTEGER,
      finished_at   INTEGER
    );
    CREATE INDEX IF NOT EXISTS jobs_claim_order ON jobs (status, priority DESC, id);
  `,
  // Named worker slots (e.g. one per GPU): at most one live worker holds a slot.
  2: `
    CREATE TABLE IF NOT EXISTS worker_slots (
      slot          TEXT PRIMARY KEY,
      owner         TEXT NOT NULL,
      owner_host    TEXT,
      owner_pid     INTEGER,
      owner_start   TEXT,
      lease_until   INTEGER,
      acquired_at   INTEGER NOT NULL
    );
  `,
};

/** Applies pending migrations inside one write transaction (safe when several processes open the DB at once). */
export function migrate(db: DatabaseSync): void {
  db.exec('BEGIN IMMEDIATE');
  try {
    const row = db.prepare('PRAGMA user_version').get() as { user_version: number };
    for (let v = row.user_version + 1; v <= SCHEMA_VERSION; v++) {
      db.exec(MIGRATIONS[v]!);
      db.exec(`PRAGMA user_version = ${v}`);
    }
    db.exec('COMMIT');
  } catch (err) {
    db.exec('ROLLBACK');
    throw err;
  }
}
