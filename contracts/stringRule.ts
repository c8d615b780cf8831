import { z } from 'zod';
import type { StringRule } from './commandRules';

/** The zod form of a rule of commandRules.ts. */
export function stringFrom(rule: StringRule): z.ZodString {
  let schema = z.string();
  if (rule.minLength !== undefined) schema = schema.min(rule.minLength);
  if (rule.maxLength !== undefined) schema = schema.max(rule.maxLength);
  if (rule.pattern) schema = schema.regex(rule.pattern, rule.patternMessage);
  return schema;
}
