/**
 * Every shape more than one part of opsledger speaks, defined once. Pure and deterministic (no
 * I/O, no Node built-ins). Workflow code imports its types from here, and its values only from the
 * files that do not load zod (commandRules.ts, intent.ts, searchAttributes.ts): a module the
 * workflow bundle loads is evaluated anew for every workflow execution.
 */
export * from './admission';
export * from './agents';
export * from './audit';
export * from './commandRules';
export * from './commands';
export * from './dispatchedRow';
export * from './intent';
export * from './ledger';
export * from './page';
export * from './searchAttributes';
export * from './statuses';
export * from './stringRule';
export * from './task';
export * from './taskState';
