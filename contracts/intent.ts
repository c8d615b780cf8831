/**
 * Intent is inferred, never stored: one per service the task touches, `<action>_<service>`,
 * e.g. deploy + kuma -> deploy_kuma. Service names are already lower-case identifiers.
 */
export function inferIntents(action: string, services: readonly string[]): string[] {
  return [...new Set(services)].map((service) => `${action}_${service}`);
}

/** Splits an intent back into its action and service (the action vocabulary has no '_'). */
export function parseIntent(intent: string): { action: string; service: string } | undefined {
  const cut = intent.indexOf('_');
  if (cut <= 0 || cut === intent.length - 1) return undefined;
  return { action: intent.slice(0, cut), service: intent.slice(cut + 1) };
}
