/**
 * The rules of an operator command's fields, as plain data: contracts/commands.ts builds the zod
 * schemas that the API parses REST bodies with (and documents in OpenAPI) from them, and the
 * workflow's Update validators check their input with `checkCommand`. Plain data, because zod in
 * the workflow bundle is evaluated anew for every workflow execution (about 65 ms of CPU each).
 * Change a rule here and both paths follow.
 */

export type StringRule = { minLength?: number; maxLength?: number; pattern?: RegExp; patternMessage?: string };

/** Who did something, as the ledger's `actor` and an operator command's `by` keep it. */
export const ACTOR_RULE: StringRule = { minLength: 1, maxLength: 200 };

export const AGENT_ID_RULE: StringRule = {
  pattern: /^[A-Za-z0-9._-]{1,128}$/,
  patternMessage: 'expected 1-128 letters, digits, dot, dash or underscore',
};

export const REASON_RULE: StringRule = { maxLength: 1000 };

export const OPERATOR_COMMANDS = ['pause', 'resume', 'override', 'cancel'] as const;
export type OperatorCommandName = (typeof OPERATOR_COMMANDS)[number];

const OPERATOR_COMMAND_FIELDS = { by: ACTOR_RULE, reason: REASON_RULE };
const OVERRIDE_COMMAND_FIELDS = { ...OPERATOR_COMMAND_FIELDS, agentId: AGENT_ID_RULE };

/** The optional string fields each command's REST body takes; any other field is refused. */
export const COMMAND_FIELDS: Record<OperatorCommandName, Record<string, StringRule>> = {
  pause: OPERATOR_COMMAND_FIELDS,
  resume: OPERATOR_COMMAND_FIELDS,
  override: OVERRIDE_COMMAND_FIELDS,
  cancel: OPERATOR_COMMAND_FIELDS,
};

/**
 * What the API adds to a REST body before it sends the Update: the principal its bearer token
 * authenticated, the actor of record. No REST body may carry it (the body schemas are built from
 * COMMAND_FIELDS alone); a command without it did not come through the API.
 */
export type ApiCommandFields = { principal?: string; principalProof?: string };
export const API_COMMAND_FIELDS: Record<keyof ApiCommandFields, StringRule> = { principal: ACTOR_RULE, principalProof: { maxLength: 100 } };

/**
 * The actor of what came straight through Temporal: Temporal tells workflow code nothing of who
 * sent an Update or started a run, and a `principal` without the API's proof vouches for nothing.
 */
export const THROUGH_TEMPORAL = 'temporal-cli';

/** What is wrong with one value under a rule, in the words zod would use; undefined when nothing is. */
export function stringRuleProblem(rule: StringRule, value: unknown): string | undefined {
  if (typeof value !== 'string') return `expected string, received ${value === null ? 'null' : typeof value}`;
  if (rule.minLength !== undefined && value.length < rule.minLength) {
    return `Too small: expected string to have >=${rule.minLength} characters`;
  }
  if (rule.maxLength !== undefined && value.length > rule.maxLength) {
    return `Too big: expected string to have <=${rule.maxLength} characters`;
  }
  if (rule.pattern && !rule.pattern.test(value)) return rule.patternMessage ?? `expected to match ${rule.pattern}`;
  return undefined;
}

/**
 * Checks a command's input as an Update validator must: throwing rejects the Update before
 * anything reaches history. No input at all (the plain Temporal CLI) is an empty command.
 */
export function checkCommand(name: OperatorCommandName, input: unknown): void {
  if (input === undefined || input === null) return;
  if (typeof input !== 'object' || Array.isArray(input)) throw new Error(`invalid ${name} command: expected an object like {"by": "alice"}`);
  const fields: Record<string, StringRule> = { ...COMMAND_FIELDS[name], ...API_COMMAND_FIELDS };
  const problems = Object.entries(input).flatMap(([field, value]) => {
    const rule = fields[field];
    if (!rule) return [`${field}: not a field of ${name}`];
    if (value === undefined) return [];
    const problem = stringRuleProblem(rule, value);
    return problem ? [`${field}: ${problem}`] : [];
  });
  if (problems.length > 0) throw new Error(`invalid ${name} command: ${problems.join('; ')}`);
}
