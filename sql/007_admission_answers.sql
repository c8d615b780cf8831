-- Admission's answers, kept by the question that asked them: a workflow's run and the number of
-- its ask. Admission runs as a local activity, inside the workflow task that asks; a workflow task
-- lost (its worker killed) before it completed leaves no marker of the answer in history, and its
-- next attempt asks again. Answered anew, it could steer the task to rows other than the ones the
-- first answer already wrote to the ledger; answered from here, it writes the same rows again, which
-- the ledger's (task_id, run_id, seq) makes a no-op. Written in the transaction that decided, so an
-- answer exists exactly when its reservation or queue row does. A task's answers go with its final
-- row (no workflow task both asks and ends a task: src/admission/pauseQueue.ts).
CREATE TABLE admission_answers (
  task_id     text        NOT NULL,
  run_id      text        NOT NULL,
  ask         integer     NOT NULL CHECK (ask > 0),
  answer      jsonb       NOT NULL,
  answered_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (task_id, run_id, ask)
);

GRANT SELECT, INSERT, DELETE ON admission_answers TO opsledger_app;
