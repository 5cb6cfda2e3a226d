import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { callApi, startApiServer } from '../../src/control/daemon/api.js';
import { CalitapError } from '../../src/common/errors.js';
import { allocateAddress, checkAddress } from '../../src/control/ipam/ipam.js';
import { loadConfigText } from '../../src/control/config/load.js';
import { formatIp4, parseIp4 } from '../../src/common/addr.js';
import { caliName } from '../../src/control/daemon/workloads.js';

describe('control API (newline-delimited JSON on a unix socket)', () => {
  it('answers calls, reports handler errors with their code, survives garbage', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calitap-api-'));
    const sock = path.join(dir, 'api.sock');
    const server = await startApiServer(sock, {
      echo: (p) => ({ got: p }),
      fail: () => {
        throw new CalitapError('workload-exists', 'it failed');
      },
      slow: async () => new Promise((r) => setTimeout(() => r('late'), 20)),
    });
    try {
      expect(await callApi(sock, 'echo', { a: 1 })).toEqual({ got: { a: 1 } });
      await expect(callApi(sock, 'fail')).rejects.toMatchObject({
        code: 'workload-exists',
        message: 'it failed',
      });
      await expect(callApi(sock, 'missing')).rejects.toMatchObject({ code: 'unknown-method' });
      expect(await callApi(sock, 'slow')).toBe('late');
      // a client sending garbage, then a valid pipelined request, on one connection
      const replies = await new Promise<string[]>((resolve, reject) => {
        const c = net.createConnection(sock);
        let buf = '';
        c.setEncoding('utf8');
        c.on('error', reject);
        c.on('data', (d: string) => {
          buf += d;
          const lines = buf.split('\n').filter((l) => l !== '');
          if (lines.length === 2) {
            c.end();
            resolve(lines);
          }
        });
        c.write('{not json\n{"id":7,"method":"echo","params":{"x":2}}\n');
      });
      expect(JSON.parse(replies[0])).toMatchObject({ error: { code: 'bad-request' } });
      expect(JSON.parse(replies[1])).toEqual({ id: 7, result: { got: { x: 2 } } });
    } finally {
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('no daemon: one clear error', async () => {
    await expect(callApi('/nonexistent/calitap.sock', 'status')).rejects.toMatchObject({ code: 'no-daemon' });
  });
});

const yaml = `
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: p}
spec: {cidr: 10.65.0.0/16, blockSize: 30}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: off}
spec: {cidr: 10.70.0.0/16, blockSize: 30, disabled: true}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: a}
spec: {bgp: {ipv4Address: 10.0.0.1/24, ipv4IPIPTunnelAddr: 10.65.0.0}}
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: {name: b-off}
spec: {node: a, cidr: 10.70.0.0/30}
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: {name: b1}
spec: {node: a, cidr: 10.65.0.0/30}
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: {name: b2}
spec: {node: a, cidr: 10.65.0.4/30}
`;

describe('IPAM', () => {
  const cfg = loadConfigText(yaml, 'ipam.yaml');
  it('hands out the lowest free address of the node’s blocks, skipping tunnel addresses and disabled pools', () => {
    const used = new Set<number>();
    const got: string[] = [];
    for (let k = 0; k < 7; k++) {
      const ip = allocateAddress(cfg, 'a', used);
      used.add(ip);
      got.push(formatIp4(ip));
    }
    expect(got).toEqual([
      '10.65.0.1',
      '10.65.0.2',
      '10.65.0.3',
      '10.65.0.4',
      '10.65.0.5',
      '10.65.0.6',
      '10.65.0.7',
    ]);
    expect(() => allocateAddress(cfg, 'a', used)).toThrow(/no free address/);
  });
  it('rejects a requested address in use or outside the pools', () => {
    expect(() => checkAddress(cfg, 'a', parseIp4('10.65.0.2')!, new Set([parseIp4('10.65.0.2')!]))).toThrow(
      /already used/,
    );
    expect(() => checkAddress(cfg, 'a', parseIp4('192.0.2.1')!, new Set())).toThrow(/outside every IP pool/);
  });
  it("names TAPs like Calico's host-side interfaces: cali + 11 hex", () => {
    expect(caliName('ns1', 'web')).toMatch(/^cali[0-9a-f]{11}$/);
    expect(caliName('ns1', 'web')).toBe(caliName('ns1', 'web'));
    expect(caliName('ns1', 'web')).not.toBe(caliName('ns2', 'web'));
  });
});
