// Architecture boundaries, checked by eslint-plugin-boundaries: layers are top-level folders and
// may import only the layers below them; workflow domains reach each other only through core/.
import boundaries from 'eslint-plugin-boundaries';

/** Bottom to top. A layer imports its own layer and the layers listed before it, never after. */
const LAYERS = [
  ['core'],
  ['db'],
  ['connectors'],
  // Siblings: both are entry points into the domain logic below them; neither imports the other.
  ['usecases', 'activities'],
  ['api', 'worker'],
  ['runtime'],
  ['cli'],
  ['bench'],
  // A fault run reuses the benchmarks' measuring helpers.
  ['faults'],
  ['tests'],
];

/**
 * The only imports against the grain, and type-only: callers start workflows with typed calls
 * (`start<typeof grantWorkflow>`) and workflows proxy activities by their types.
 */
const TYPE_ONLY_EXCEPTIONS = [
  { from: ['usecases', 'activities', 'api', 'worker', 'runtime', 'cli', 'bench', 'faults'], to: ['workflows'] },
  { from: ['workflows'], to: ['activities'] },
];

/** Domains that own workflows: each reaches another only through that domain's core/ modules (its contract). */
const WORKFLOW_DOMAINS = ['grants', 'lifecycle', 'diagnostics', 'campaigns', 'templates', 'actions'];

const layerNames = LAYERS.flat();
const below = (layer) =>
  LAYERS.slice(
    0,
    LAYERS.findIndex((group) => group.includes(layer)),
  ).flat();

const elements = [...layerNames, 'workflows'].flatMap((layer) => [
  // The domain is the first folder under the layer (api: under api/routes), or the file's own name.
  { type: layer, pattern: `${layer}/routes/*.ts`, mode: 'full', capture: ['domain'] },
  { type: layer, pattern: `${layer}/*/**`, mode: 'full', capture: ['domain'] },
  { type: layer, pattern: `${layer}/*.ts`, mode: 'full', capture: ['domain'] },
]);

const policies = [
  ...layerNames.map((layer) => ({
    from: { element: { type: layer } },
    allow: { to: { element: { type: [layer, ...below(layer)] } } },
  })),
  // Workflow code is deterministic: contracts and pure rules from core/, nothing else by value.
  { from: { element: { type: 'workflows' } }, allow: { to: { element: { type: ['workflows', 'core'] } } } },
  { from: { element: { type: 'tests' } }, allow: { to: { element: { type: 'workflows' } } } },
  ...TYPE_ONLY_EXCEPTIONS.map(({ from, to }) => ({
    from: { element: { type: from } },
    allow: { to: { element: { type: to } }, dependency: { kind: 'type' } },
  })),
  // Cross-domain calls go through the other domain's contract (core/<domain>/…), whatever the layer.
  ...WORKFLOW_DOMAINS.map((domain) => ({
    from: { element: { type: ['db', 'connectors', 'usecases', 'activities', 'workflows', 'api', 'cli'], captured: { domain } } },
    disallow: {
      to: {
        element: {
          type: ['db', 'connectors', 'usecases', 'activities', 'workflows', 'api', 'cli'],
          captured: { domain: WORKFLOW_DOMAINS.filter((d) => d !== domain) },
        },
      },
    },
  })),
];

export const boundariesConfig = {
  files: ['**/*.ts'],
  plugins: { boundaries },
  settings: {
    'import/resolver': { typescript: { alwaysTryTypes: true } },
    'boundaries/elements': elements,
    // `mode: 'full'` (whole-path patterns, files included) is what this layout needs; v7 calls it legacy.
    'boundaries/legacy-warnings': false,
  },
  rules: {
    'boundaries/dependencies': ['error', { default: 'disallow', policies }],
  },
};
