-- Migration 1: the schema of QRS 0.1.0, exactly as it shipped (CREATE ... IF NOT EXISTS,
-- so a 0.1.0 data directory, whose user_version is 0, takes it as a no-op).
-- Never edit this file: a schema change is a new migration (see migrations.py).
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    program_id TEXT NOT NULL,
    backend TEXT NOT NULL,
    session_id TEXT,
    status TEXT NOT NULL,
    reason TEXT,
    reason_code INTEGER,
    created REAL NOT NULL,
    running_at REAL,
    finished_at REAL,
    tags TEXT NOT NULL DEFAULT '[]',
    log_level TEXT,
    private INTEGER NOT NULL DEFAULT 0,
    max_execution_time INTEGER,
    num_pubs INTEGER NOT NULL DEFAULT 0,
    num_circuits INTEGER NOT NULL DEFAULT 0,
    width INTEGER NOT NULL DEFAULT 0,
    dry_run INTEGER NOT NULL DEFAULT 0,
    claimed_by TEXT,
    heartbeat REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    usage_seconds REAL NOT NULL DEFAULT 0,
    idempotency_key TEXT
);
CREATE INDEX IF NOT EXISTS jobs_user_created ON jobs (user_id, created);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created);
-- GET /jobs hides dry-run jobs by default and counts them apart: these small partial
-- indexes keep that as cheap as an unfiltered listing.
CREATE INDEX IF NOT EXISTS jobs_dry_runs ON jobs (dry_run, created) WHERE dry_run=1;
CREATE INDEX IF NOT EXISTS jobs_user_dry_runs ON jobs (user_id, created) WHERE dry_run=1;
CREATE INDEX IF NOT EXISTS jobs_status_created ON jobs (status, created);
CREATE INDEX IF NOT EXISTS jobs_session ON jobs (session_id, status);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency ON jobs (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE IF NOT EXISTS job_logs (
    job_id TEXT NOT NULL,
    ts REAL NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_logs_job ON job_logs (job_id, ts);

CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    mode TEXT NOT NULL,
    backend TEXT,
    state TEXT NOT NULL,
    accepting_jobs INTEGER NOT NULL DEFAULT 1,
    max_ttl INTEGER NOT NULL,
    interactive_ttl INTEGER NOT NULL,
    created REAL NOT NULL,
    activated_at REAL,
    closed_at REAL,
    last_job_started REAL,
    last_job_completed REAL,
    close_reason TEXT
);
CREATE INDEX IF NOT EXISTS sessions_state ON sessions (state);

CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    admin INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    revoked_at REAL
);
