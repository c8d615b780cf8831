import { z } from 'zod';
import { ACTOR_RULE, AGENT_ID_RULE, OPERATOR_COMMANDS, REASON_RULE, type ApiCommandFields, type OperatorCommandName } from './commandRules';
import { stringFrom } from './stringRule';

/**
 * An operator command, the same through REST and through the plain Temporal CLI: these schemas
 * (the REST bodies and their OpenAPI entries) and the workflow's Update validators (`checkCommand`)
 * both come from the rules of commandRules.ts.
 */

export const OperatorCommand = z
  .strictObject({
    by: stringFrom(ACTOR_RULE)
      .optional()
      .meta({ description: "Who asks, in the caller's words: kept as a note in the row's outcome. The actor of record is the token's principal." }),
    reason: stringFrom(REASON_RULE).optional(),
  })
  .meta({ id: 'OperatorCommand' });
export type OperatorCommand = z.infer<typeof OperatorCommand>;

export const OverrideCommand = OperatorCommand.extend({
  agentId: stringFrom(AGENT_ID_RULE)
    .optional()
    .meta({ description: 'Dispatch to this agent; else the live agent with the most headroom.' }),
}).meta({ id: 'OverrideCommand' });
export type OverrideCommand = z.infer<typeof OverrideCommand>;

/** What the workflow's Updates take: a REST body and, from the API only, the authenticated principal. */
export type OperatorCommandInput = OperatorCommand & ApiCommandFields;
export type OverrideCommandInput = OverrideCommand & ApiCommandFields;

/** The schema each command's body must meet. */
export const COMMAND_INPUT = {
  pause: OperatorCommand,
  resume: OperatorCommand,
  override: OverrideCommand,
  cancel: OperatorCommand,
} as const satisfies Record<OperatorCommandName, z.ZodType>;

export { OPERATOR_COMMANDS, type OperatorCommandName };
