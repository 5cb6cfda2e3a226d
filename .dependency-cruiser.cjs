// Layout rules for src/ (docs/architecture.md, "Rules"), checked by `npm run check:deps`, which
// `npm test` runs through `npm run lint`. Every rule applies to every import, `import type` included:
// a type-only import still ties the two modules' designs together.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycle',
      severity: 'error',
      comment: 'No import cycles anywhere in src/: split the shared part into its own module instead.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'dataplane-not-control',
      severity: 'error',
      comment:
        'src/dataplane never imports src/control or src/cli: control programs the dataplane, not the other way round.',
      from: { path: '^src/dataplane/' },
      to: { path: '^src/(control|cli)/' },
    },
    {
      name: 'graph-not-features',
      severity: 'error',
      comment:
        'Core graph nodes never import a feature (src/dataplane/features): features register on arcs instead.',
      from: { path: '^src/dataplane/graph/' },
      to: { path: '^src/dataplane/features/' },
    },
    {
      name: 'no-folder-cycle',
      severity: 'error',
      comment: 'No cycles between folders of src/ either (e.g. graph -> features/nat -> graph).',
      scope: 'folder',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'pure-paths-no-native',
      severity: 'error',
      comment:
        'Replay, config, BGP and table programming run without root or the native addon: nothing they import may reach src/dataplane/devices/native.ts.',
      from: {
        path: '^src/(cli/replay|dataplane/replay|control/daemon/program)\\.ts$|^src/control/(config|bgp)/',
      },
      to: { path: '^src/dataplane/devices/native\\.ts$', reachable: true },
    },
    {
      name: 'src-not-bench',
      severity: 'error',
      comment: 'src/ never imports bench/: `calitap bench` runs the compiled bench scripts as processes.',
      from: { path: '^src/' },
      to: { path: '^bench/' },
    },
    {
      name: 'src-not-test',
      severity: 'error',
      comment: 'src/ never imports test/.',
      from: { path: '^src/' },
      to: { path: '^test/' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that resolves to nothing is a typo or a missing dependency.',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // type-only imports count (see the header); TS's resolver maps the `.js` suffixes to `.ts` files
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
