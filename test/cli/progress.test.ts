// The replay progress line (src/cli/progress.ts) with an injected clock and a fake terminal: shown
// only after the delay, at most once per interval, only on a TTY and never with --quiet, erased at the
// end; and `calitap replay` leaves stderr clean.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatProgress, progressPrinter, type ProgressStream } from '../../src/cli/progress.js';
import { runReplay } from '../../src/cli/replay.js';

const ERASE = '\r\x1b[K';

class FakeTty implements ProgressStream {
  out = '';
  constructor(
    readonly isTTY: boolean,
    readonly columns?: number,
  ) {}
  write(s: string): boolean {
    this.out += s;
    return true;
  }
  /** the lines drawn, in order */
  get lines(): string[] {
    return this.out.split(ERASE).filter((l) => l !== '');
  }
}

function clock(): { now: () => number; t: number } {
  const c = { t: 1000, now: () => c.t };
  return c;
}

describe('replay progress line', () => {
  it('formats percent of bytes, MB, frames and frames/s', () => {
    expect(formatProgress(120_000, 1_200_000, 2_900_000, 2000)).toBe(
      'replay: 41% 1.2 of 2.9 MB, 120000 frames, 60000 frames/s',
    );
    expect(formatProgress(0, 0, 0, 0)).toBe('replay: 0% 0.0 of 0.0 MB, 0 frames, 0 frames/s');
    expect(formatProgress(5, 300, 200, 1000)).toMatch(/^replay: 100% /); // never over 100
  });

  it('nothing before the delay; then at most one line per interval; done() erases it', () => {
    const c = clock();
    const tty = new FakeTty(true);
    const p = progressPrinter({ stream: tty, now: c.now, delayMs: 2000, intervalMs: 250 });
    p.onProgress(10, 100, 1000);
    c.t += 1999;
    p.onProgress(20, 200, 1000);
    expect(tty.out).toBe(''); // a short run never shows progress
    c.t += 1;
    p.onProgress(30, 300, 1000);
    expect(tty.lines).toEqual(['replay: 30% 0.0 of 0.0 MB, 30 frames, 15 frames/s']);
    c.t += 100;
    p.onProgress(40, 400, 1000); // within the interval: not drawn
    expect(tty.lines).toHaveLength(1);
    c.t += 150;
    p.onProgress(50, 500, 1000);
    expect(tty.lines).toHaveLength(2);
    expect(tty.lines[1]).toMatch(/^replay: 50% .* 50 frames, 22 frames\/s$/);
    expect(p.drawn).toBe(true);
    p.done();
    expect(tty.out.endsWith(ERASE)).toBe(true);
    expect(p.drawn).toBe(false);
    expect(tty.out).not.toContain('\n'); // one line, rewritten in place
  });

  it('not a terminal, or --quiet: never draws', () => {
    for (const [tty, quiet] of [
      [new FakeTty(false), false],
      [new FakeTty(true), true],
    ] as const) {
      const c = clock();
      const p = progressPrinter({ stream: tty, quiet, now: c.now, delayMs: 0, intervalMs: 0 });
      for (let i = 0; i < 10; i++) {
        c.t += 1000;
        p.onProgress(i, i, 10);
      }
      p.done();
      expect(tty.out).toBe('');
    }
  });

  it('a line never wider than the terminal (no wrap)', () => {
    const c = clock();
    const tty = new FakeTty(true, 20);
    const p = progressPrinter({ stream: tty, now: c.now, delayMs: 0 });
    c.t += 1;
    p.onProgress(123456, 5_000_000, 9_000_000);
    expect(tty.lines[0]).toHaveLength(19);
  });

  it('done() without a drawn line writes nothing', () => {
    const tty = new FakeTty(true);
    progressPrinter({ stream: tty }).done();
    expect(tty.out).toBe('');
  });
});

describe('calitap replay with a terminal on stderr', () => {
  it('stdout is the summary; stderr ends erased (or untouched)', () => {
    const root = path.join(import.meta.dirname, '..', '..');
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'calitap-progress-'));
    try {
      const tty = new FakeTty(true);
      const c = clock();
      const printed: string[] = [];
      const res = runReplay(
        {
          config: path.join(root, 'pcaps', 'sample-config.yaml'),
          node: 'node-a',
          in: [
            `cali1a2b3c4d5e6=${path.join(root, 'pcaps', 'demo-workload.pcap')}`,
            `uplink=${path.join(root, 'pcaps', 'demo-uplink.pcap')}`,
          ],
          out,
        },
        (s) => printed.push(s),
        // every call draws: the clock jumps a second per read
        {
          stream: tty,
          now: () => (c.t += 1000),
          delayMs: 0,
          intervalMs: 0,
        },
      );
      expect(res.frames).toBe(17);
      expect(printed.join('\n')).toContain('replayed 17 frames on node-a');
      expect(printed.join('\n')).not.toContain('replay: ');
      expect(tty.out === '' || tty.out.endsWith(ERASE)).toBe(true);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
