-- Failures split by service, agent or action and over time (GET /api/v1/audit/failures/summary
-- with by= or bucket=, src/ledger/failureBreakdown.ts). The hourly running totals of
-- 002_ledger_totals.sql count failures by class per service only; these splits count the failure
-- rows themselves. Failures are a small part of the ledger, and this index holds every column the
-- split reads, so a range is an index-only scan of its failures: no heap page is read.
CREATE INDEX tasks_failures_breakdown_idx ON tasks (created_at)
  INCLUDE (failure_class, agent, action, services_touched)
  WHERE status IN ('failed', 'timed_out', 'cancelled');

-- Estimated against actual duration (GET /api/v1/audit/durations, src/ledger/durations.ts) reads
-- the final rows of runs that went to the playbook, about a third of the ledger: this index holds
-- only them, so a range reads no other row.
CREATE INDEX tasks_run_durations_idx ON tasks (created_at)
  INCLUDE (action, services_touched)
  WHERE status IN ('succeeded', 'failed') AND resources_used ? 'wallTimeS';
