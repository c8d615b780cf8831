import { defineSearchAttributeKey } from '@temporalio/common';

/** Kept current by taskWorkflow, so the Web UI and `temporal workflow list --query` can filter. */
export const OpsStatus = defineSearchAttributeKey('OpsStatus', 'KEYWORD');
export const OpsServices = defineSearchAttributeKey('OpsServices', 'KEYWORD_LIST');
export const OpsAction = defineSearchAttributeKey('OpsAction', 'KEYWORD');
export const OpsIntent = defineSearchAttributeKey('OpsIntent', 'KEYWORD_LIST');
export const OpsAgent = defineSearchAttributeKey('OpsAgent', 'KEYWORD');

export const SEARCH_ATTRIBUTES = { OpsStatus, OpsServices, OpsAction, OpsIntent, OpsAgent };
