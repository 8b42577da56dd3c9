-- Migration 2 (issue 17): per-user quotas. jobs.stored_bytes counts a job's params and
-- result bytes, kept by the statements that write either file (jobs stored before this
-- migration count 0 until they finish); the indexes answer a user's usage (finished
-- jobs, stored bytes, open sessions) without reading rows.
ALTER TABLE jobs ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS jobs_user_status_bytes ON jobs (user_id, status, stored_bytes);
CREATE INDEX IF NOT EXISTS sessions_user_state ON sessions (user_id, state);
