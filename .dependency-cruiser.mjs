/**
 * The layering of src/ (docs: STYLE.md, "A layout that shows the architecture"), checked by
 * `npm test` with dependency-cruiser: `depcruise src --config .dependency-cruiser.mjs`.
 *
 * Dependencies run one way: cli → core → transport; modules → core; core → facts → shared.
 * `src/shared/` is the leaf every layer may use (probe types, the shell quoting function, `truthy`).
 * Type-only imports count (`tsPreCompilationDeps`): a layer that names another's types depends on it.
 */
const SRC = '^src/';

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'nothing-imports-cli',
      comment: 'src/cli is the edge (argv, wiring, exit codes): it imports everything, nothing imports it.',
      severity: 'error',
      from: {path: SRC, pathNot: '^src/cli/'},
      to: {path: '^src/cli/'},
    },
    {
      name: 'core-imports-only-transport-facts-shared',
      comment:
        'src/core is the engine: it may import src/transport (the interface), src/facts and src/shared, ' +
        'never src/cli, src/ui, src/lab, src/inventory, src/modules, src/templates or the public index.',
      severity: 'error',
      from: {path: '^src/core/'},
      to: {path: SRC, pathNot: '^src/(core|transport|facts|shared)/'},
    },
    {
      name: 'core-knows-only-the-transport-interface',
      comment: 'src/core talks to hosts through the Transport interface (src/transport/types.ts), never SSH or the fake.',
      severity: 'error',
      from: {path: '^src/core/'},
      to: {path: '^src/transport/', pathNot: '^src/transport/types\\.ts$'},
    },
    {
      name: 'facts-never-import-core',
      comment: 'src/facts are probes and pure parsers: they import src/shared only (core imports facts, not the reverse).',
      severity: 'error',
      from: {path: '^src/facts/'},
      to: {path: SRC, pathNot: '^src/(facts|shared)/'},
    },
    {
      name: 'transport-is-a-leaf',
      comment: 'src/transport imports nothing of src but src/shared.',
      severity: 'error',
      from: {path: '^src/transport/'},
      to: {path: SRC, pathNot: '^src/(transport|shared)/'},
    },
    {
      name: 'shared-is-a-leaf',
      comment: 'src/shared holds the types and helpers several layers need; it imports nothing else of src.',
      severity: 'error',
      from: {path: '^src/shared/'},
      to: {path: SRC, pathNot: '^src/shared/'},
    },
    {
      name: 'ui-consumes-only-core-types-and-events',
      comment:
        'src/ui only consumes run events: of src/core it may import types.ts and events.ts, and secret.ts ' +
        '(the Secret type and mask(), to mask values before formatting them); src/shared too.',
      severity: 'error',
      from: {path: '^src/ui/'},
      to: {path: SRC, pathNot: '^src/(ui|shared)/|^src/core/(types|events|secret)\\.ts$'},
    },
  ],
  options: {
    includeOnly: SRC,
    doNotFollow: {path: 'node_modules'},
    tsPreCompilationDeps: true,
    tsConfig: {fileName: 'tsconfig.json'},
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.tsx', '.js', '.mjs', '.cjs', '.d.ts'],
    },
    reporterOptions: {text: {highlightFocused: true}},
  },
};
