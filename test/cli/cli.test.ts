// The `calitap` command line, spawned as users run it (node bin/calitap.js, over dist/ built by
// `npm test`'s pretest; run `npm run build` first when running this file alone): replay's JSON and text
// output, its outputs on disk, exit codes, --version, and the one-line `calitap: ...` error contract.
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(ROOT, 'bin', 'calitap.js');
const PCAPS = path.join(ROOT, 'pcaps');
const CONFIG = path.join(PCAPS, 'sample-config.yaml');
const W1 = 'cali1a2b3c4d5e6';
const IN_W = `${W1}=${path.join(PCAPS, 'demo-workload.pcap')}`;
const IN_U = `uplink=${path.join(PCAPS, 'demo-uplink.pcap')}`;

if (!fs.existsSync(path.join(ROOT, 'dist', 'src', 'cli', 'main.js'))) {
  throw new Error('dist/ is missing: run `npm run build` before the CLI tests');
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function calitap(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'calitap-cli-'));
}

/** The error contract: non-zero exit, nothing on stdout, exactly one stderr line `calitap: ...`. */
function expectOneLineError(r: Run, ...parts: string[]): void {
  expect(r.code, r.stderr).not.toBe(0);
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^calitap: /);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  for (const p of parts) expect(lines[0]).toContain(p);
}

describe.concurrent('calitap replay', () => {
  it('--json prints one JSON object with ports and counters, exits 0 despite drops, writes the expected pcaps', async () => {
    const out = tmpDir();
    try {
      // --trace is ignored with --json: stdout stays one JSON object
      const r = await calitap([
        'replay',
        '--config',
        CONFIG,
        '--node',
        'node-a',
        '--in',
        IN_W,
        '--in',
        IN_U,
        '--out',
        out,
        '--json',
        '--trace',
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      const lines = r.stdout.split('\n').filter((l) => l.length > 0);
      expect(lines).toHaveLength(1);
      const j = JSON.parse(lines[0]);
      expect(j.node).toBe('node-a');
      expect(j.frames).toBe(17);
      expect(j.ports.map((p: { port: string }) => p.port)).toEqual([
        'uplink',
        W1,
        'cali0123456789a',
        'cali9f8e7d6c5b4',
      ]);
      for (const p of j.ports) {
        expect(Object.keys(p).sort()).toEqual(['port', 'rxBytes', 'rxPackets', 'txBytes', 'txPackets']);
      }
      expect(j.ports[0]).toMatchObject({ port: 'uplink', rxPackets: 5 });
      expect(j.ports[1]).toMatchObject({ port: W1, rxPackets: 12, txPackets: 3 });
      expect(j.counters).toContainEqual({ node: 'ip4-input', reason: 'bad-checksum', count: 1 });
      expect(j.counters).toContainEqual({ node: 'ip4-spoof-check', reason: 'spoofed-source', count: 1 });
      expect(j.counters).toContainEqual({ node: 'ethernet-input', reason: 'vlan-tagged', count: 1 });
      for (const c of j.counters) expect(c.count).toBeGreaterThan(0);
      // the files on disk are the committed expected outputs
      const files = fs.readdirSync(out).sort();
      expect(files).toEqual([
        'cali0123456789a.pcap',
        'cali1a2b3c4d5e6.pcap',
        'cali9f8e7d6c5b4.pcap',
        'uplink.pcap',
      ]);
      for (const f of files) {
        const want = fs.readFileSync(path.join(PCAPS, 'expected', 'demo', f));
        expect(fs.readFileSync(path.join(out, f)).equals(want), f).toBe(true);
      }
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  it('prints a per-port table and the counters without --json; --trace adds per-frame decisions', async () => {
    const out = tmpDir();
    try {
      const t = await calitap([
        'replay',
        '--config',
        CONFIG,
        '--node',
        'node-a',
        '--in',
        IN_W,
        '--out',
        out,
        '--trace',
      ]);
      expect(t.code, t.stderr).toBe(0);
      expect(t.stdout).toContain('frame 1 rx cali1a2b3c4d5e6');
      expect(t.stdout).toContain('arp-reply: who-has 169.254.1.1');
      expect(t.stdout).toContain('ip4-input: drop: bad-checksum');
      expect(t.stdout).toContain('replayed 12 frames on node-a');
      expect(t.stdout).toMatch(/PORT\s+RX\s+RX-BYTES\s+TX\s+TX-BYTES/);
      expect(t.stdout).toMatch(/ip4-input: bad-checksum\s+1/);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  it('bad config: one line naming the resource, the field and the value', async () => {
    const dir = tmpDir();
    try {
      const bad = fs.readFileSync(CONFIG, 'utf8').replace('blockSize: 26', 'blockSize: 33');
      expect(bad).toContain('blockSize: 33');
      const cfg = path.join(dir, 'bad.yaml');
      fs.writeFileSync(cfg, bad);
      const r = await calitap([
        'replay',
        '--config',
        cfg,
        '--node',
        'node-a',
        '--in',
        IN_W,
        '--out',
        path.join(dir, 'o'),
      ]);
      expectOneLineError(r, 'IPPool', 'pool-ipip', 'spec.blockSize', '33');
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('unreadable capture', async () => {
    const dir = tmpDir();
    try {
      const missing = path.join(dir, 'missing.pcap');
      const r = await calitap([
        'replay',
        '--config',
        CONFIG,
        '--node',
        'node-a',
        '--in',
        `uplink=${missing}`,
        '--out',
        dir,
      ]);
      expectOneLineError(r, missing);
      expect(r.code).toBe(1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('unknown port: the message lists the ports', async () => {
    const dir = tmpDir();
    try {
      const r = await calitap([
        'replay',
        '--config',
        CONFIG,
        '--node',
        'node-a',
        '--in',
        `eth9=${path.join(PCAPS, 'demo-uplink.pcap')}`,
        '--out',
        dir,
      ]);
      expectOneLineError(r, 'eth9', 'uplink, cali1a2b3c4d5e6, cali0123456789a, cali9f8e7d6c5b4');
      expect(r.code).toBe(2);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('missing --in', async () => {
    const dir = tmpDir();
    try {
      const r = await calitap(['replay', '--config', CONFIG, '--node', 'node-a', '--out', dir]);
      expectOneLineError(r, '--in');
      expect(r.code).toBe(2);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('missing --out (a required option handled by the argument parser)', async () => {
    const r = await calitap(['replay', '--config', CONFIG, '--node', 'node-a', '--in', IN_W]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.split('\n').filter((l) => l.length > 0)).toHaveLength(1);
    expect(r.stderr).toContain('--out');
    expectOneLineError(r, '--out');
  });
});

describe('calitap --version', () => {
  it('prints the version of package.json and exits 0 (also -V)', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = await calitap([flag]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${pkg.version}\n`);
      expect(r.stderr).toBe('');
    }
  });
});

describe('calitap demo', () => {
  // `demo` alone builds a live cluster in network namespaces when run as root: the replay flavour only
  it('demo --replay replays the samples with a trace and exits 0', async () => {
    const r = await calitap(['demo', '--replay']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('calitap demo');
    expect(r.stdout).toContain('frame 1 rx cali1a2b3c4d5e6');
    expect(r.stdout).toContain(
      'arp-reply: who-has 169.254.1.1 tell 10.65.0.2: reply 169.254.1.1 is-at ee:ee:ee:ee:ee:ee',
    );
    expect(r.stdout).toContain('interface-output: tx uplink');
    expect(r.stdout).toContain('ip4-lookup: drop: blackhole');
    expect(r.stdout).toMatch(/replayed 17 frames on node-a/);
    const m = /outputs: (\S+)\/<port>\.pcap/.exec(r.stdout);
    expect(m).not.toBeNull();
    if (m && m[1].startsWith(os.tmpdir())) fs.rmSync(m[1], { recursive: true, force: true });
  });
});

// The same error contract, in process (cheaper than a node start per case): main() from the CLI
// module with stdout/stderr captured and process.exitCode restored.
describe('calitap errors (in process)', () => {
  async function inProcess(args: string[]): Promise<Run> {
    const { main } = await import('../../src/cli/main.js');
    let stdout = '';
    let stderr = '';
    const ow = process.stdout.write.bind(process.stdout);
    const ew = process.stderr.write.bind(process.stderr);
    const saved = process.exitCode;
    process.exitCode = 0;
    process.stdout.write = ((s: string) => ((stdout += s), true)) as typeof process.stdout.write;
    process.stderr.write = ((s: string) => ((stderr += s), true)) as typeof process.stderr.write;
    let code: number;
    try {
      await main(['node', 'calitap', ...args]);
    } catch (e) {
      stderr += `uncaught: ${e instanceof Error ? e.stack : String(e)}\n`;
    } finally {
      process.stdout.write = ow;
      process.stderr.write = ew;
      code = Number(process.exitCode ?? 0);
      process.exitCode = saved;
    }
    return { code, stdout, stderr };
  }

  const dir = tmpDir();
  const replayArgs = (cfg: string, ...rest: string[]) => [
    'replay',
    '--config',
    cfg,
    '--node',
    'node-a',
    ...rest,
  ];

  it('missing config file', async () => {
    const missing = path.join(dir, 'nope.yaml');
    expectOneLineError(await inProcess(replayArgs(missing, '--in', IN_W, '--out', dir)), missing);
  });

  it('unparsable YAML', async () => {
    const broken = path.join(dir, 'broken.yaml');
    fs.writeFileSync(broken, 'apiVersion: projectcalico.org/v3\nkind: IPPool\n  spec: [\n');
    expectOneLineError(await inProcess(replayArgs(broken, '--in', IN_W, '--out', dir)), broken);
  });

  it('unknown node', async () => {
    const r = await inProcess(['replay', '--config', CONFIG, '--node', 'node-z', '--in', IN_W, '--out', dir]);
    expectOneLineError(r, 'node-z', 'node-a, node-b, node-c');
  });

  it('captures that are not pcap/pcapng, truncated in the header, or a directory', async () => {
    const junk = path.join(dir, 'junk.pcap');
    fs.writeFileSync(junk, 'this is not a capture file at all\n');
    expectOneLineError(await inProcess(replayArgs(CONFIG, '--in', `uplink=${junk}`, '--out', dir)), junk);
    const short = path.join(dir, 'short.pcap');
    fs.writeFileSync(short, fs.readFileSync(path.join(PCAPS, 'demo-uplink.pcap')).subarray(0, 10));
    expectOneLineError(await inProcess(replayArgs(CONFIG, '--in', `uplink=${short}`, '--out', dir)), short);
    expectOneLineError(await inProcess(replayArgs(CONFIG, '--in', `uplink=${dir}`, '--out', dir)), dir);
  });

  it('malformed --in and --seed', async () => {
    expectOneLineError(
      await inProcess(replayArgs(CONFIG, '--in', 'uplink', '--out', dir)),
      '--in uplink',
      'PORT=FILE',
    );
    expectOneLineError(
      await inProcess(replayArgs(CONFIG, '--in', IN_U, '--out', dir, '--seed', '-3')),
      '--seed',
    );
  });

  it('bench with an unknown name: one line, exit 2', async () => {
    const r = await inProcess(['bench', 'warp']);
    expectOneLineError(r, 'bench warp: unknown');
    expect(r.code).toBe(2);
  });

  it('cleans up', () => {
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
