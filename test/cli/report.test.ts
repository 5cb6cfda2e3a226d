// How `calitap` reports failures (src/cli/report.ts): one line `calitap: <message>` and the registry's
// exit status for every CalitapError; "internal error" plus the stack only for bugs.
import { describe, expect, it } from 'vitest';
import { CommanderError } from 'commander';
import {
  CaptureError,
  ConfigError,
  ControlApiError,
  ERROR_CODES,
  CalitapError,
  InternalError,
  UsageError,
  type ErrorCode,
} from '../../src/common/errors.js';
import { EXIT_INTERNAL, reportError } from '../../src/cli/report.js';

function report(e: unknown): { status: number; text: string } {
  let text = '';
  const status = reportError(e, (s) => (text += s));
  return { status, text };
}

describe('reportError', () => {
  it('every registered code but `internal` prints one line and exits with its registry status', () => {
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      if (code === 'internal') continue;
      const r = report(new CalitapError(code, `something about ${code}`));
      expect(r.text).toBe(`calitap: something about ${code}\n`);
      expect(r.status).toBe(ERROR_CODES[code].exit);
      expect(r.status).not.toBe(0);
    }
  });

  it('usage and config errors exit 2, others 1', () => {
    expect(report(new UsageError('--in x: expected PORT=FILE')).status).toBe(2);
    expect(report(new ConfigError('f.yaml: IPPool p: spec.cidr x: bad')).status).toBe(2);
    expect(report(new CaptureError('a.pcap: truncated')).status).toBe(1);
    expect(report(new ControlApiError('no-daemon', 's: cannot reach')).status).toBe(1);
  });

  it('a message with several lines still prints one line', () => {
    const r = report(new ConfigError('\nfirst line\nsecond line'));
    expect(r.text).toBe('calitap: first line\n');
  });

  it('argument-parser errors: one line without the "error:" prefix, exit 2; --help/--version exit 0 silently', () => {
    const r = report(
      new CommanderError(
        1,
        'commander.missingMandatoryOptionValue',
        "error: required option '--out <dir>' not specified",
      ),
    );
    expect(r).toEqual({ status: 2, text: "calitap: required option '--out <dir>' not specified\n" });
    expect(report(new CommanderError(0, 'commander.version', '0.1.0'))).toEqual({ status: 0, text: '' });
  });

  it('a non-Calitap error is an internal error with its stack', () => {
    const e = new TypeError('cannot read properties of undefined');
    const r = report(e);
    expect(r.status).toBe(EXIT_INTERNAL);
    const lines = r.text.trimEnd().split('\n');
    expect(lines[0]).toBe('calitap: internal error: cannot read properties of undefined');
    expect(lines.length).toBeGreaterThan(1);
    expect(r.text).toMatch(/\n\s+at /);
  });

  it('InternalError (a bug we caught) is reported the same way; thrown non-errors too', () => {
    const r = report(new InternalError('table state inconsistent'));
    expect(r.status).toBe(EXIT_INTERNAL);
    expect(r.text).toMatch(/^calitap: internal error: table state inconsistent\n/);
    expect(report('a string').text).toMatch(/^calitap: internal error: a string\n/);
  });
});
