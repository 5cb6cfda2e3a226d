// The live demo's guard rails (src/cli/demo-tools.ts, demo-live.ts), without root: missing tools are
// installed with the project's installer or stop the demo with one line before it prints anything,
// and a command's header is never printed without output under it.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEMO_TOOLS, ensureDemoTools, onPath } from '../../src/cli/demo-tools.js';
import { runLiveDemo, showCommand, type CommandResult } from '../../src/cli/demo-live.js';
import { CalitapError } from '../../src/common/errors.js';

function fakeRoot(withInstaller: boolean): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'calitap-demo-'));
  if (withInstaller) {
    fs.mkdirSync(path.join(root, 'scripts'));
    fs.writeFileSync(path.join(root, 'scripts', 'ensure-system-deps.sh'), '# fake\n');
  }
  return root;
}

describe('demo tools', () => {
  it('the demo needs ip, ping and iperf3, from the packages ensure-system-deps.sh installs', () => {
    expect(DEMO_TOOLS.map((t) => t.cmd)).toEqual(['ip', 'ping', 'iperf3']);
    const installer = fs.readFileSync(
      path.join(import.meta.dirname, '..', '..', 'scripts', 'ensure-system-deps.sh'),
      'utf8',
    );
    for (const t of DEMO_TOOLS) expect(installer).toContain(t.pkg);
  });

  it('all present: nothing installed', () => {
    let installs = 0;
    const got = ensureDemoTools({ root: '/nonexistent', probe: () => true, install: () => ++installs });
    expect(got).toEqual([]);
    expect(installs).toBe(0);
  });

  it('missing ones are installed with scripts/ensure-system-deps.sh, then looked for again', () => {
    const root = fakeRoot(true);
    try {
      const have = new Set(['ip']);
      const scripts: string[] = [];
      const got = ensureDemoTools({
        root,
        probe: (cmd) => have.has(cmd),
        install: (script) => {
          scripts.push(script);
          have.add('ping').add('iperf3');
          return 0;
        },
      });
      expect(got.map((t) => t.cmd)).toEqual(['ping', 'iperf3']);
      expect(scripts).toEqual([path.join(root, 'scripts', 'ensure-system-deps.sh')]);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('still missing after the installer: one line naming each command and its package', () => {
    const root = fakeRoot(true);
    try {
      let err: unknown;
      try {
        ensureDemoTools({ root, probe: (cmd) => cmd === 'ip', install: () => 1 });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CalitapError);
      expect(err).toMatchObject({ code: 'tools-missing' });
      const msg = (err as Error).message;
      expect(msg).not.toContain('\n');
      expect(msg).toContain('ping (package iputils-ping), iperf3 (package iperf3)');
      expect(msg).toContain('calitap demo --replay');
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('no installer in the tree: says so, without running anything', () => {
    const root = fakeRoot(false);
    try {
      let installs = 0;
      expect(() =>
        ensureDemoTools({ root, probe: (cmd) => cmd !== 'iperf3', install: () => ++installs }),
      ).toThrow(/iperf3 \(package iperf3\) not installed and .*ensure-system-deps\.sh is missing/);
      expect(installs).toBe(0);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('onPath finds executables in $PATH only', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calitap-path-'));
    try {
      fs.writeFileSync(path.join(dir, 'tool'), '#!/bin/sh\n', { mode: 0o755 });
      fs.writeFileSync(path.join(dir, 'data'), '', { mode: 0o644 });
      expect(onPath('tool', `/nonexistent${path.delimiter}${dir}`)).toBe(true);
      expect(onPath('data', dir)).toBe(false);
      expect(onPath('tool', '')).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('live demo output', () => {
  it('missing tools stop the demo before it prints anything or builds a lab', async () => {
    const printed: string[] = [];
    let labs = 0;
    await expect(
      runLiveDemo('ipip', (s) => printed.push(s), {
        ensureTools: () => ensureDemoTools({ root: '/nonexistent', probe: (c) => c !== 'ping' }),
        createLab: () => {
          labs++;
          throw new Error('not reached');
        },
      }),
    ).rejects.toMatchObject({ code: 'tools-missing' });
    expect(printed).toEqual([]);
    expect(labs).toBe(0);
  });

  it('a command with output: its header, then the output', () => {
    const printed: string[] = [];
    const r: CommandResult = { status: 0, stdout: 'a\nb\n', stderr: '' };
    showCommand((s) => printed.push(s), '$ ping 10.65.0.3', r, r.stdout);
    expect(printed).toEqual(['$ ping 10.65.0.3\na\nb']);
  });

  it('a command without output: never a bare header, always the reason under it', () => {
    const cases: [CommandResult, string][] = [
      [
        { status: 2, stdout: '', stderr: 'ping: connect: Network is unreachable\nmore' },
        '(no output: exit status 2: ping: connect: Network is unreachable)',
      ],
      [{ status: 1, stdout: '  \n', stderr: '' }, '(no output: exit status 1)'],
      [{ status: null, stdout: '', stderr: '' }, '(no output: killed)'],
    ];
    for (const [r, why] of cases) {
      const printed: string[] = [];
      showCommand((s) => printed.push(s), '$ ping 10.65.0.3', r, r.stdout);
      expect(printed).toEqual([`$ ping 10.65.0.3\n${why}`]);
      for (const p of printed) expect(p.split('\n').length).toBeGreaterThan(1);
    }
  });
});
