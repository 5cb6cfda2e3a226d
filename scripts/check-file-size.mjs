#!/usr/bin/env node
// `npm run check:size` (part of `npm run lint`, so of `npm test`): no source file in src/ or native/
// over 600 lines (docs/architecture.md, "Rules"). Prints each offender with its line count and exits
// 1; exits 0 silently when every file fits. Usage: check-file-size.mjs [--max N] [dir ...]
// (default: --max 600 src native, relative to the current directory).
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const SOURCE_EXT = /\.(ts|mts|cts|js|mjs|cjs|c|h|cc|cpp|hpp)$/;
export const DEFAULT_MAX_LINES = 600;

/** Lines of a text, counted as editors do: a final newline does not start another line. */
export function countLines(text) {
  if (text.length === 0) return 0;
  const n = text.split('\n').length;
  return text.endsWith('\n') ? n - 1 : n;
}

function* walk(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if (e.code === 'ENOENT') return;
    throw e;
  }
  for (const ent of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, ent.name);
    if (ent.isDirectory()) {
      if (ent.name !== 'node_modules' && ent.name !== 'build') yield* walk(p);
    } else if (ent.isFile() && SOURCE_EXT.test(ent.name)) yield p;
  }
}

/** Every source file under `dirs` longer than `max` lines, in path order. */
export function oversized(dirs, max = DEFAULT_MAX_LINES) {
  const out = [];
  for (const d of dirs)
    for (const file of walk(d)) {
      const lines = countLines(readFileSync(file, 'utf8'));
      if (lines > max) out.push({ file, lines });
    }
  return out;
}

function main(argv) {
  let max = DEFAULT_MAX_LINES;
  const dirs = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--max') {
      max = Number(argv[++i]);
      if (!Number.isInteger(max) || max <= 0) {
        process.stderr.write(`check-file-size: --max ${argv[i]}: expected a positive integer\n`);
        return 2;
      }
    } else dirs.push(argv[i]);
  }
  const bad = oversized(dirs.length > 0 ? dirs : ['src', 'native'], max);
  for (const b of bad)
    process.stderr.write(`${relative(process.cwd(), b.file)}: ${b.lines} lines (limit ${max})\n`);
  if (bad.length > 0) {
    process.stderr.write(`check-file-size: ${bad.length} file(s) over ${max} lines: split them by concern\n`);
    return 1;
  }
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href)
  process.exitCode = main(process.argv.slice(2));
