// The calicoctl-style commands as users run them (node bin/calitap.js over dist/; `npm run build`
// first), against the file datastore: apply / create / replace / delete -f, get with calicoctl's
// columns and -o yaml|json, ipam show, and the one-line error contract naming resource, field and value.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(ROOT, 'bin', 'calitap.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calitap-dscli-'));
const CFG = path.join(dir, 'cluster.yaml');

function calitap(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = execFile(
      process.execPath,
      [BIN, ...args],
      { encoding: 'utf8', env: { ...process.env, DATASTORE_TYPE: '' } },
      (err, stdout, stderr) =>
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr }),
    );
    if (input !== undefined) p.stdin!.end(input);
  });
}

const file = (name: string, text: string): string => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
};

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('calitap apply / get / delete on the file datastore', () => {
  fs.writeFileSync(
    CFG,
    'apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: node-1}\nspec: {bgp: {ipv4Address: 10.0.0.1/24}}\n',
  );

  it('applies a multi-document file and shows calicoctl columns', async () => {
    const f = file(
      'pools.yaml',
      `apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: pool-a}
spec: {cidr: 10.65.0.0/16, ipipMode: Always, natOutgoing: true}
---
{"apiVersion": "projectcalico.org/v3", "kind": "IPPool", "metadata": {"name": "pool-b"}, "spec": {"cidr": "10.66.0.0/16", "vxlanMode": "CrossSubnet", "disabled": true}}
`,
    );
    const r = await calitap(['apply', '-f', f, '--config', CFG]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe("Successfully applied 2 'IPPool' resource(s)");
    const wide = await calitap(['get', 'ippools', '-o', 'wide', '--config', CFG]);
    expect(wide.stdout.split('\n')[0].split(/\s+/)).toEqual([
      'NAME',
      'CIDR',
      'NAT',
      'IPIPMODE',
      'VXLANMODE',
      'DISABLED',
      'DISABLEBGPEXPORT',
      'SELECTOR',
    ]);
    expect(wide.stdout).toMatch(/pool-a\s+10.65.0.0\/16\s+true\s+Always\s+Never\s+false\s+false\s+all\(\)/);
    expect(wide.stdout).toMatch(
      /pool-b\s+10.66.0.0\/16\s+false\s+Never\s+CrossSubnet\s+true\s+false\s+all\(\)/,
    );
    const j = JSON.parse((await calitap(['get', 'ippool', 'pool-a', '-o', 'json', '--config', CFG])).stdout);
    expect(j).toMatchObject({ kind: 'IPPool', metadata: { name: 'pool-a' }, spec: { cidr: '10.65.0.0/16' } });
    expect(j.metadata.resourceVersion).toMatch(/^\d+$/);
    const list = (await calitap(['get', 'ippool', '-o', 'yaml', '--config', CFG])).stdout;
    expect(list).toContain('kind: IPPoolList');
    expect((await calitap(['get', 'nodes', '--config', CFG])).stdout).toBe('NAME\nnode-1\n');
    const show = (await calitap(['ipam', 'show', '--config', CFG])).stdout;
    expect(show).toContain('| GROUPING | CIDR');
    expect(show).toMatch(/\| IP Pool\s+\| 10.65.0.0\/16 \| 65536\s+\| 0 \(0%\)\s+\| 65536 \(100%\)/);
  });

  it('create refuses what exists, replace and delete need it, and say so in one line', async () => {
    const f = file(
      'a.yaml',
      'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pool-a}\nspec: {cidr: 10.65.0.0/16}\n',
    );
    const c = await calitap(['create', '-f', f, '--config', CFG]);
    expect(c.code).toBe(1);
    expect(c.stderr.trim()).toBe('calitap: IPPool pool-a: already exists');
    const g = file(
      'g.yaml',
      'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: ghost}\nspec: {cidr: 10.99.0.0/16}\n',
    );
    expect((await calitap(['replace', '-f', g, '--config', CFG])).stderr.trim()).toBe(
      'calitap: IPPool ghost: does not exist',
    );
    expect((await calitap(['delete', 'ippool', 'ghost', '--config', CFG])).stderr.trim()).toBe(
      'calitap: IPPool ghost: does not exist',
    );
    expect((await calitap(['delete', '-f', f, '--config', CFG])).stdout.trim()).toBe(
      "Successfully deleted 1 'IPPool' resource(s)",
    );
    expect((await calitap(['get', 'ippool', '--config', CFG])).stdout).not.toContain('pool-a');
  });

  it('names file, resource, field and value when a document is invalid, and writes nothing', async () => {
    const before = fs.readFileSync(CFG, 'utf8');
    const f = file(
      'bad.yaml',
      'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: ok-pool}\nspec: {cidr: 10.70.0.0/16}\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: bad-pool}\nspec: {cidr: 10.71.0.0/16, ipipMode: Sometimes}\n',
    );
    const r = await calitap(['apply', '-f', f, '--config', CFG]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(
      `calitap: ${f}: IPPool bad-pool: spec.ipipMode Sometimes: must be one of Always, CrossSubnet, Never`,
    );
    expect(fs.readFileSync(CFG, 'utf8')).toBe(before);
    const k = await calitap([
      'apply',
      '-f',
      file('k.yaml', 'apiVersion: projectcalico.org/v3\nkind: Gadget\nmetadata: {name: x}\n'),
      '--config',
      CFG,
    ]);
    expect(k.stderr).toMatch(/kind Gadget: unknown resource type/);
    const e = await calitap(['get', 'ippool']);
    expect(e.stderr.trim()).toMatch(/^calitap: no datastore: give --config FILE, or --datastore etcdv3/);
  });
});
