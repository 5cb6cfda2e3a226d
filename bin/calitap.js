#!/usr/bin/env node
// Thin launcher: the CLI is compiled TypeScript in dist/ (built by `npm install` through `prepare`).
import('../dist/src/cli/main.js')
  .then((m) => m.main(process.argv))
  .catch((err) => {
    process.stderr.write(`calitap: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
