// Every workflow the worker registers. Deterministic code only: no I/O, no Node built-ins.
export { pingWorkflow } from './diagnostics/workflow.js';
export { sweepWorkflow } from './directory/sweep.js';
export { grantWorkflow } from './grants/workflow.js';
export { hrImportWorkflow } from './lifecycle/import.js';
export { personWorkflow } from './lifecycle/workflow.js';
export { policyChangeWorkflow } from './tenancy/workflow.js';
export { campaignRunWorkflow } from './campaigns/run.js';
export { tenantReviewWorkflow } from './campaigns/review.js';
export { scheduledCampaignRunWorkflow } from './campaigns/scheduled.js';
export { actionWorkflow } from './actions/workflow.js';
export { templateApplyWorkflow } from './templates/apply.js';
export { templateRolloutWorkflow } from './templates/rollout.js';
export { templateDriftScanWorkflow, templateDriftCheckWorkflow } from './templates/drift.js';
export { tenantCloneWorkflow } from './templates/clone.js';
export { templateRollbackWorkflow, rolloutRollbackWorkflow } from './templates/rollback.js';
