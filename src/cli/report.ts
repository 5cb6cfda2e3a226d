// How `calitap` reports a failure on stderr, and its exit status. A CalitapError (every expected
// failure) is one line `calitap: <message>` and the exit status its code has in the registry
// (src/common/errors.ts); argument-parser errors are one line and exit 2; anything else is a bug:
// `calitap: internal error: <message>` followed by its stack, exit 70 (EX_SOFTWARE). Main thread.
import { CommanderError } from 'commander';
import { CalitapError } from '../common/errors.js';

/** sysexits.h EX_SOFTWARE: an internal software error. */
export const EXIT_INTERNAL = 70;

/** First line of a message (a message is one line by contract; this keeps the output one line anyway). */
function oneLine(s: string): string {
  const first = s.split('\n').find((l) => l.trim() !== '') ?? '';
  return first.trim();
}

/** Writes the report for `e` with `write` (stderr) and returns the exit status. */
export function reportError(e: unknown, write: (s: string) => void): number {
  if (e instanceof CommanderError) {
    if (e.exitCode === 0) return 0; // --help, --version
    write(`calitap: ${oneLine(e.message.replace(/^error: /, ''))}\n`);
    return 2;
  }
  if (e instanceof CalitapError && e.code !== 'internal') {
    write(`calitap: ${oneLine(e.message)}\n`);
    return e.exitStatus;
  }
  const err = e instanceof Error ? e : new Error(String(e));
  write(`calitap: internal error: ${oneLine(err.message)}\n${err.stack ?? '(no stack)'}\n`);
  return EXIT_INTERNAL;
}
