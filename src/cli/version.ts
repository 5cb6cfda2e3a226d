// `calitap --version`: the version field of calitap's own package.json, found by walking up from this
// module (src/cli/version.ts in the source tree, dist/src/cli/version.js once built). Main thread,
// read once per process.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InternalError } from '../common/errors.js';

/** The `version` of the nearest package.json named `calitap` above `from` (a directory). */
export function packageVersion(from = path.dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    let text: string | undefined;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      text = undefined;
    }
    if (text !== undefined) {
      const pkg = JSON.parse(text) as { name?: unknown; version?: unknown };
      if (pkg.name === 'calitap' && typeof pkg.version === 'string') return pkg.version;
    }
    if (path.dirname(dir) === dir) throw new InternalError(`${from}: no calitap package.json above it`);
  }
}
