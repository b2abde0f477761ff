// Every workflow the worker registers. Deterministic code only: no I/O, no Node built-ins.
export { pingWorkflow } from './ping.js';
export { grantWorkflow } from './grant.js';
export { personWorkflow } from './person.js';
