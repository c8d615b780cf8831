-- Admission state. Unlike the ledger this is operational data: rows come and go as tasks wait,
-- get capacity and end. The ledger records every decision taken on it.

-- Each agent (a worker host) reports its capacity; a report older than the configured age
-- takes the agent out of admission.
CREATE TABLE agents (
  agent_id          text PRIMARY KEY CHECK (agent_id ~ '^[A-Za-z0-9._-]+$'),
  -- The shared task queue whose workflows this agent serves; admission matches on it.
  pool              text        NOT NULL,
  task_queue        text        NOT NULL,
  cpu_cores         numeric     NOT NULL CHECK (cpu_cores > 0),
  load_pct          numeric     NOT NULL CHECK (load_pct >= 0),
  memory_total_mb   bigint      NOT NULL CHECK (memory_total_mb >= 0),
  memory_free_mb    bigint      NOT NULL CHECK (memory_free_mb >= 0),
  gpu_vram_total_mb bigint      CHECK (gpu_vram_total_mb >= 0),
  gpu_vram_free_mb  bigint      CHECK (gpu_vram_free_mb >= 0),
  labels            jsonb       NOT NULL DEFAULT '{}',
  heartbeat_at      timestamptz NOT NULL,
  first_seen_at     timestamptz NOT NULL DEFAULT now()
);

-- What admitted tasks hold on their agent until they end.
CREATE TABLE reservations (
  task_id     text PRIMARY KEY,
  agent_id    text        NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
  cpu         numeric     NOT NULL,
  memory_mb   bigint      NOT NULL,
  gpu_vram_mb bigint      NOT NULL,
  overridden  boolean     NOT NULL DEFAULT false,
  reserved_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reservations_agent_idx ON reservations (agent_id);

-- Tasks paused before dispatch, in dispatch order (priority, then age). A row the dispatcher has
-- reserved for carries granted_agent until its workflow has been signalled, and the agent's load
-- when it was picked, which the workflow records with its dispatch; the two go together.
CREATE TABLE pause_queue (
  task_id              text PRIMARY KEY,
  pool                 text        NOT NULL,
  priority             integer     NOT NULL,
  enqueued_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
  reason               text        NOT NULL CHECK (reason IN ('capacity', 'operator_hold', 'dispatch_hold')),
  shortfall            text,
  requirements         jsonb       NOT NULL,
  held_by              text,
  granted_agent        text,
  load_pct_at_dispatch numeric,
  updated_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT pause_queue_grant_has_load CHECK ((granted_agent IS NULL) = (load_pct_at_dispatch IS NULL))
);
CREATE INDEX pause_queue_dispatch_order_idx ON pause_queue (pool, priority DESC, enqueued_at, task_id);

-- Operators can hold all dispatch (maintenance). One row.
CREATE TABLE dispatch_control (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  held      boolean NOT NULL DEFAULT false,
  held_by   text,
  changed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO dispatch_control DEFAULT VALUES;
