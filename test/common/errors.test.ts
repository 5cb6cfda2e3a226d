// The error registry (src/common/errors.ts): the list of codes is stable (scripts and the control API
// match on them: a code is never renamed or removed, so this list only grows), each code belongs to
// one exported subclass, and every family throws only its own codes.
import { describe, expect, it } from 'vitest';
import * as errors from '../../src/common/errors.js';
import {
  CalitapError,
  ConfigError,
  ControlApiError,
  ERROR_CODES,
  InternalError,
  IpamError,
  SystemError,
  UsageError,
  asCalitapError,
  isErrorCode,
  type ErrorCode,
} from '../../src/common/errors.js';

/** Every code, in registry order. Adding a code: append it here too. Never rename or remove one. */
const STABLE_CODES: [ErrorCode, string][] = [
  ['usage', 'UsageError'],
  ['config-invalid', 'ConfigError'],
  ['capture-invalid', 'CaptureError'],
  ['datastore-unavailable', 'DatastoreError'],
  ['datastore-conflict', 'DatastoreError'],
  ['datastore-not-found', 'DatastoreError'],
  ['datastore-invalid', 'DatastoreError'],
  ['datastore-exists', 'DatastoreError'],
  ['datastore-compacted', 'DatastoreError'],
  ['ipam-exhausted', 'IpamError'],
  ['ip-in-use', 'IpamError'],
  ['ip-outside-pools', 'IpamError'],
  ['ipam-conflict', 'IpamError'],
  ['bgp-invalid', 'BgpSpeakerError'],
  ['bgp-listen', 'BgpSpeakerError'],
  ['bgp-connect', 'BgpSpeakerError'],
  ['bgp-encode', 'BgpSpeakerError'],
  ['io-native-missing', 'DeviceError'],
  ['uplink-open', 'DeviceError'],
  ['no-netns', 'DeviceError'],
  ['ip-command', 'DeviceError'],
  ['command-failed', 'DeviceError'],
  ['tools-missing', 'DeviceError'],
  ['adjacency-table-full', 'TableError'],
  ['neighbor-table-full', 'TableError'],
  ['policy-table-full', 'TableError'],
  ['workload-exists', 'WorkloadError'],
  ['no-workload', 'WorkloadError'],
  ['no-daemon', 'ControlApiError'],
  ['timeout', 'ControlApiError'],
  ['unknown-method', 'ControlApiError'],
  ['bad-request', 'ControlApiError'],
  ['too-long', 'ControlApiError'],
  ['bad-reply', 'ControlApiError'],
  ['remote-error', 'ControlApiError'],
  ['workers-start', 'DaemonError'],
  ['workers-busy', 'DaemonError'],
  ['daemon-start', 'DaemonError'],
  ['bench-missing', 'BenchError'],
  ['bench-failed', 'BenchError'],
  ['system', 'SystemError'],
  ['internal', 'InternalError'],
];

describe('error registry', () => {
  const entries = Object.entries(ERROR_CODES);

  it('lists exactly the stable codes, in order, each with its family', () => {
    expect(entries.map(([c, i]) => [c, i.family])).toEqual(STABLE_CODES);
    expect(new Set(entries.map(([c]) => c)).size).toBe(entries.length);
  });

  it('codes are kebab-case; descriptions are one line; exit status is 1 or 2', () => {
    for (const [c, info] of entries) {
      expect(c).toMatch(/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/);
      expect(info.text.length).toBeGreaterThan(10);
      expect(info.text).not.toMatch(/\n/);
      expect([1, 2]).toContain(info.exit);
    }
    // what the user typed or wrote exits 2, like the argument parser's errors
    expect(entries.filter(([, i]) => i.exit === 2).map(([c]) => c)).toEqual(['usage', 'config-invalid']);
  });

  it('every family is an exported CalitapError subclass with that name', () => {
    const exported = errors as unknown as Record<string, unknown>;
    for (const family of new Set(entries.map(([, i]) => i.family))) {
      const cls = exported[family] as { prototype: unknown } | undefined;
      expect(typeof cls, family).toBe('function');
      expect(cls!.prototype instanceof CalitapError, family).toBe(true);
    }
  });

  it('subclasses carry their code, name and exit status', () => {
    const cases: [CalitapError, ErrorCode, string][] = [
      [new ConfigError('f: x'), 'config-invalid', 'ConfigError'],
      [new UsageError('u'), 'usage', 'UsageError'],
      [new IpamError('ip-in-use', 'i'), 'ip-in-use', 'IpamError'],
      [new ControlApiError('no-daemon', 'n'), 'no-daemon', 'ControlApiError'],
      [new InternalError('bug'), 'internal', 'InternalError'],
    ];
    for (const [e, code, name] of cases) {
      expect(e).toBeInstanceOf(CalitapError);
      expect(e.code).toBe(code);
      expect(e.name).toBe(name);
      expect(e.exitStatus).toBe(ERROR_CODES[code].exit);
      expect(ERROR_CODES[code].family).toBe(name);
    }
    // @ts-expect-error a family only takes its own codes
    new IpamError('no-daemon', 'x');
    // @ts-expect-error unregistered codes do not compile
    new CalitapError('no-such-code', 'x');
  });

  it('isErrorCode accepts registered codes only', () => {
    expect(isErrorCode('usage')).toBe(true);
    expect(isErrorCode('toString')).toBe(false);
    expect(isErrorCode('nope')).toBe(false);
    expect(isErrorCode(3)).toBe(false);
  });

  it('SystemError keeps errno, its name and the syscall, in a one-line message', () => {
    const sys = Object.assign(new Error('TUNSETIFF: Device or resource busy (EBUSY)\nmore'), {
      code: 'EBUSY',
      errno: 16,
      syscall: 'TUNSETIFF',
    });
    const e = new SystemError('tapOpen cali0', sys);
    expect(e.code).toBe('system');
    expect(e.message).toBe('tapOpen cali0: TUNSETIFF: Device or resource busy (EBUSY)');
    expect([e.errnoName, e.errno, e.syscall]).toEqual(['EBUSY', 16, 'TUNSETIFF']);
    expect(e.cause).toBe(sys);
  });

  it('asCalitapError: Calitap errors pass, errno errors become SystemError, the rest InternalError', () => {
    const c = new UsageError('u');
    expect(asCalitapError(c, 'x')).toBe(c);
    const sys = Object.assign(new Error('open: No such file'), { errno: -2, code: 'ENOENT' });
    expect(asCalitapError(sys, 'state')).toMatchObject({
      code: 'system',
      message: 'state: open: No such file',
    });
    const bug = asCalitapError(new TypeError('x is undefined'), 'add');
    expect(bug).toBeInstanceOf(InternalError);
    expect(bug.message).toBe('add: x is undefined');
  });
});
