// UDP GSO through a real device (root): a veth pair with one end in a namespace made here. One
// writeBatchUdpGso call sends two GSO datagrams from this namespace; a Python receiver in the other
// namespace counts what arrives: MTU-sized datagrams with exactly the bytes sent. A segment size that
// does not fit the device MTU (1472 payload + 28 header bytes = 1500) is refused for that datagram
// (EMSGSIZE).
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as io from '../../src/dataplane/devices/native.js';
import { hasPython, ip, liveSkipReason, sh, tryIp } from '../io/helpers.js';

const pid = process.pid;
const NS = `ctuns${pid}`;
const A = `ctuv${pid}a`;
const B = `ctuv${pid}b`;
const skip = liveSkipReason || (!hasPython ? 'needs python3' : '');

/** Starts a UDP receiver on 10.254.0.2:9999 in NS; resolves once it listens. */
function receiver(want: number): Promise<{ done: Promise<{ sizes: number[]; sum: number }> }> {
  const py = `
import socket, sys, json
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
s.bind(("10.254.0.2", 9999))
s.settimeout(5)
print("ready", flush=True)
sizes, total = [], 0
try:
    while len(sizes) < ${want}:
        d = s.recv(65536)
        sizes.append(len(d))
        total += sum(d)
except socket.timeout:
    pass
print(json.dumps({"sizes": sizes, "sum": total}), flush=True)
`;
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', NS, 'python3', '-c', py], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const done = new Promise<{ sizes: number[]; sum: number }>((res, rej) => {
      p.on('close', () => {
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (line) res(JSON.parse(line) as { sizes: number[]; sum: number });
        else rej(new Error(`receiver: ${out} ${err}`));
      });
    });
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve({ done });
    });
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
  });
}

describe.skipIf(skip !== '')(`UDP GSO over a veth (live${skip ? `: skipped, ${skip}` : ''})`, () => {
  beforeAll(() => {
    tryIp('netns', 'del', NS);
    tryIp('link', 'del', A);
    ip('netns', 'add', NS);
    ip('link', 'add', A, 'type', 'veth', 'peer', 'name', B, 'netns', NS);
    sh('sysctl', ['-qw', `net.ipv6.conf.${A}.disable_ipv6=1`]);
    ip('addr', 'add', '10.254.0.1/30', 'dev', A);
    ip('link', 'set', A, 'up');
    ip('netns', 'exec', NS, 'sysctl', '-qw', `net.ipv6.conf.${B}.disable_ipv6=1`);
    ip('-n', NS, 'addr', 'add', '10.254.0.2/30', 'dev', B);
    ip('-n', NS, 'link', 'set', B, 'up');
  });
  afterAll(() => {
    tryIp('link', 'del', A);
    tryIp('netns', 'del', NS);
  });

  it('datagrams leave as MTU-sized segments; a segment size over the MTU is refused', async () => {
    const fd = io.udpSocket('10.254.0.1', 0);
    const seg = 1472;
    const lens = Uint32Array.of(seg * 40 + 100, seg * 3, 64000);
    const segs = Uint16Array.of(seg, seg, seg + 1);
    const SLOT = 65536;
    const u8 = new Uint8Array(new SharedArrayBuffer(3 * SLOT));
    const offs = Uint32Array.of(0, SLOT, 2 * SLOT);
    let sum = 0;
    for (let i = 0; i < 2; i++) {
      for (let k = 0; k < lens[i]; k++) {
        u8[offs[i] + k] = (k * 7 + i) & 255;
        sum += u8[offs[i] + k];
      }
    }
    const want = 41 + 3;
    const rx = await receiver(want);
    const status = new Int32Array(3);
    const dst = new Uint32Array(3).fill(0x0afe0002);
    const ports = new Uint16Array(3).fill(9999);
    // ARP for the peer may hold the first send: the kernel queues it (accepted) until it resolves
    expect(io.writeBatchUdpGso(fd, u8, offs, lens, 3, segs, status, dst, ports)).toBe(2);
    expect([status[0], status[1], io.errnoName(status[2])]).toEqual([0, 0, 'EMSGSIZE']);
    const got = await rx.done;
    expect(got.sizes.length).toBe(want);
    expect(got.sizes.filter((s) => s === seg).length).toBe(43);
    expect(got.sizes.filter((s) => s === 100).length).toBe(1);
    expect(got.sum).toBe(sum);
    io.close(fd);
  });
});
