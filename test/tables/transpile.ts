// Worker threads in tests need JavaScript: this transpiles source modules and everything they import
// relatively (with the `typescript` package, no type checking) into a temporary directory that mirrors
// the repository layout, so a worker fixture can `import()` the current source without a build.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const IMPORT = /(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)\.js['"]/g;

export interface Transpiled {
  /** file URL of the transpiled module for a repository path such as `src/dataplane/tables/set.ts` */
  url(repoPath: string): string;
  cleanup(): void;
}

/** Transpiles `entries` (repository paths of .ts files) and their relative imports. */
export function transpile(entries: string[]): Transpiled {
  const dir = mkdtempSync(join(tmpdir(), 'calitap-ts-'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
  const done = new Set<string>();
  const todo = entries.map((e) => resolve(root, e));
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (done.has(file)) continue;
    done.add(file);
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(IMPORT)) todo.push(resolve(dirname(file), `${m[1]}.ts`));
    const js = ts.transpileModule(src, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    const out = join(dir, relative(root, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, js);
  }
  return {
    url: (p) => pathToFileURL(join(dir, p.replace(/\.ts$/, '.js'))).href,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
