import pino from 'pino';

/** Structured JSON logs on stdout; every line about a task carries `taskId` (use `forTask`). */
export const logger = pino({
  level: process.env.LOG_LEVEL ?? 'info',
  base: { service: 'opsledger' },
  timestamp: pino.stdTimeFunctions.isoTime,
  redact: { paths: ['secretVars', '*.secretVars', 'input.secretVars'], censor: '[secret]' },
});

export type Logger = pino.Logger;

export function forTask(taskId: string, parent: Logger = logger): Logger {
  return parent.child({ taskId });
}
