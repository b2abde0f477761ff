// Tenure's own tenancy (tenants, their policies, actors, role bindings, API tokens, webhook
// secrets), one module per entity; this index lets a caller take them all at once.
export * from './tenants.js';
export * from './policies.js';
export * from './actors.js';
export * from './bindings.js';
export * from './tokens.js';
export * from './webhooks.js';
export * from './bootstrap.js';
export type { TenancyDeps } from './views.js';
export * from './policy-changes.js';
export * from './overview.js';
