// The live benchmark's ratio table (bench/live-report.ts): which columns each goal row takes its
// figures from (kernel, calitap, the TAP floor), the met/not-met rule of both goal kinds, and n/a
// where a column is missing. And the floor forwarder itself (bench/floor/tapfwd.c) still compiles
// without warnings, so the bench does not rot between runs.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatRatioTable } from '../../bench/live-report.js';
import { emptyResult, type LiveResult } from '../../bench/live-measure.js';

function col(key: string, tcp1: number | null, ping: number | null, genKpps: number | null): LiveResult {
  return {
    ...emptyResult({
      key,
      scenario: key.endsWith('same') ? 'same-host' : 'cross-host',
      dataplane: key.startsWith('kernel') ? 'kernel' : key.startsWith('floor') ? 'floor' : 'calitap',
      path: key,
    }),
    tcp1,
    genRxPps: genKpps === null ? null : genKpps * 1e3,
    pingAvg: ping,
  };
}

const row = (table: string, start: string): string[] => {
  const line = table.split('\n').find((l) => l.startsWith(`| ${start}`));
  if (line === undefined) throw new Error(`no row ${start}`);
  return line
    .split('|')
    .map((c) => c.trim())
    .slice(1, -1);
};

describe('live bench ratio table', () => {
  const results = [
    col('kernel-same', 10, 0.05, 900),
    col('kernel-cross', 10, 0.1, 400),
    col('ipip-same', 8, 0.15, 600),
    col('ipip-cross', 2, 0.4, 200),
    col('never-cross', 4, 0.3, 200),
    col('floor-same', 7, 0.09, 200),
    col('floor-cross', 5, 0.3, 80),
    col('floor-ipip-cross', 3, 0.35, 120),
  ];
  const t = formatRatioTable(results);

  it('ratios and goals from the right columns, with the floor and floor / kernel', () => {
    expect(row(t, 'same host TCP')).toEqual([
      'same host TCP 1 stream, Gbit/s',
      '10.00',
      '8.00',
      '0.80',
      '≥ 0.8',
      'yes',
      '7.00',
      '0.70',
    ]);
    // the tunnel rows take the IPIP floor
    expect(row(t, 'cross host TCP 1 stream, IPIP').slice(1)).toEqual([
      '10.00',
      '2.00',
      '0.20',
      '≥ 0.5',
      'no',
      '3.00',
      '0.30',
    ]);
    expect(row(t, 'cross host TCP 1 stream, Never').slice(6)).toEqual(['5.00', '0.50']);
    expect(row(t, 'same host 60 B').slice(1, 4)).toEqual(['900', '600', '0.67']);
  });

  it('latency: met at 2 × kernel + 0.05 ms, not above', () => {
    expect(row(t, 'ping avg same host')[5]).toBe('yes'); // 0.15 ≤ 0.15
    expect(row(t, 'ping avg cross host, IPIP')[5]).toBe('no'); // 0.4 > 0.25
    expect(row(t, 'ping avg cross host, IPIP').slice(6)).toEqual(['0.350', '3.50']);
  });

  it('a column that was not measured is n/a, never a number', () => {
    const r = row(t, 'cross host TCP 1 stream, VXLAN');
    expect(r.slice(2, 6)).toEqual(['n/a', 'n/a', '≥ 0.5', 'n/a']);
    const none = formatRatioTable([col('kernel-same', 10, 0.05, 900)]);
    expect(row(none, 'same host TCP').slice(6)).toEqual(['n/a', 'n/a']);
  });
});

describe('bench/floor/tapfwd.c', () => {
  const cc = spawnSync('sh', ['-c', 'command -v cc'], { encoding: 'utf8' }).stdout.trim();
  it.skipIf(cc === '')('compiles without warnings', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calitap-floor-test-'));
    try {
      const src = path.join(__dirname, '..', '..', 'bench', 'floor', 'tapfwd.c');
      const r = spawnSync(cc, ['-O2', '-Wall', '-Wextra', '-Werror', '-o', path.join(dir, 'tapfwd'), src], {
        encoding: 'utf8',
      });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
