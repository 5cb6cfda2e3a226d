// One calitap host, three workloads: workload-to-workload ping, TCP and UDP both ways through the
// userspace dataplane; the workload side of the link looks like Calico's (169.254.1.1 is-at
// ee:ee:ee:ee:ee:ee, default via 169.254.1.1); a workload that spoofs its source is dropped and counted.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../../src/lab/lab.js';
import {
  captured,
  counters,
  delta,
  isRoot,
  killAll,
  ping,
  prefix,
  python,
  readPcapIp4,
  run,
  startCapture,
  tcpExchange,
  udpSend,
  waitPing,
} from './helpers.js';

type W = { ns: string; ip: string; name: string };

describe.skipIf(!isRoot())('one host, workloads on it (requires root: network namespaces)', () => {
  let lab: Lab;
  let w1: W;
  let w2: W;
  let w3: W;

  beforeAll(async () => {
    lab = Lab.create({ prefix: prefix('l1'), mode: 'ipip', hosts: 1, workers: 1 });
    await lab.start(1);
    w1 = await lab.addWorkload(1);
    w2 = await lab.addWorkload(1);
    w3 = await lab.addWorkload(1);
    await waitPing(w1.ns, w2.ip);
  });

  afterAll(async () => {
    await killAll();
    await lab?.destroyAsync();
  });

  it('pings between the workloads both ways', async () => {
    const a = await ping(w1.ns, w2.ip, { count: 3 });
    const b = await ping(w2.ns, w1.ip, { count: 3 });
    expect(a.received, a.out).toBe(3);
    expect(b.received, b.out).toBe(3);
  });

  it('gives the workload Calico’s link: 169.254.1.1 is-at ee:ee:ee:ee:ee:ee, default via it', async () => {
    await ping(w1.ns, w2.ip, { count: 1 });
    const neigh = JSON.parse((await run(w1.ns, ['ip', '-j', 'neigh', 'show', 'dev', 'eth0'])).stdout) as {
      dst: string;
      lladdr?: string;
    }[];
    const gw = neigh.find((n) => n.dst === '169.254.1.1');
    expect(gw, JSON.stringify(neigh)).toBeDefined();
    expect(gw!.lladdr).toBe('ee:ee:ee:ee:ee:ee');
    const rt = (await run(w1.ns, ['ip', '-4', 'route', 'show'])).stdout;
    expect(rt).toMatch(/^default via 169\.254\.1\.1 dev eth0/m);
    expect(rt).toMatch(/^169\.254\.1\.1 dev eth0 scope link/m);
    const addr = (await run(w1.ns, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout;
    expect(addr).toContain(`inet ${w1.ip}/32`);
  });

  it('carries TCP both ways (nc server in one workload, client in the other)', async () => {
    const ab = await tcpExchange(w2.ns, w1.ns, w2.ip, 7001, 'hello from w1\n', 'hello from w2\n');
    expect(ab.serverGot).toBe('hello from w1\n');
    expect(ab.clientGot).toBe('hello from w2\n');
    expect(ab.serverLog).toContain(w1.ip);
    const ba = await tcpExchange(w1.ns, w2.ns, w1.ip, 7002, 'ping from w2\n', 'pong from w1\n');
    expect(ba.serverGot).toBe('ping from w2\n');
    expect(ba.clientGot).toBe('pong from w1\n');
    expect(ba.serverLog).toContain(w2.ip);
  });

  it('carries UDP both ways', async () => {
    expect(await udpSend(w2.ns, w1.ns, w2.ip, 7003, 'udp-w1-to-w2')).toContain('udp-w1-to-w2');
    expect(await udpSend(w1.ns, w2.ns, w1.ip, 7004, 'udp-w2-to-w1')).toContain('udp-w2-to-w1');
  });

  it('drops a source address the workload does not own (ping -I a second address)', async () => {
    const spoofed = '10.65.0.50';
    await run(w1.ns, ['ip', 'addr', 'add', `${spoofed}/32`, 'dev', 'eth0']);
    try {
      const before = await counters(lab, 1);
      const r = await ping(w1.ns, w2.ip, { count: 3, src: spoofed, wait: 0.5 });
      expect(r.sent, r.out).toBe(3);
      expect(r.received, r.out).toBe(0);
      const d = delta(before, await counters(lab, 1));
      expect(d['ip4-spoof-check: spoofed-source'], JSON.stringify(d)).toBeGreaterThanOrEqual(3);
    } finally {
      await run(w1.ns, ['ip', 'addr', 'del', `${spoofed}/32`, 'dev', 'eth0']);
    }
    // the real address still works
    expect((await ping(w1.ns, w2.ip, { count: 1 })).received).toBe(1);
  });

  it('drops frames forged with another workload’s source (scapy), and they never reach anyone', async () => {
    const file = path.join(lab.dir, 'w2-spoof.pcap');
    const cap = await startCapture(w2.ns, 'eth0', file, ['icmp']);
    const before = await counters(lab, 1);
    // w1 pretends to be w3 and pings w2: if it got through, w2 would see it and answer w3
    await python(
      w1.ns,
      [
        'from scapy.all import Ether, IP, ICMP, sendp, conf',
        'conf.verb = 0',
        `f = Ether(dst='ee:ee:ee:ee:ee:ee')/IP(src='${w3.ip}', dst='${w2.ip}')/ICMP(id=0x5151)/(b'x'*32)`,
        "sendp([f]*5, iface='eth0')",
      ].join('\n'),
    );
    // a real ping afterwards proves the capture was live and the path is fine
    expect((await ping(w1.ns, w2.ip, { count: 1 })).received).toBe(1);
    const d = delta(before, await counters(lab, 1));
    await captured(file, (pkts) => pkts.some((p) => p.src === w1.ip));
    await cap.stop('SIGINT');
    expect(d['ip4-spoof-check: spoofed-source'], JSON.stringify(d)).toBe(5);
    const seen = readPcapIp4(file);
    expect(seen.some((p) => p.src === w1.ip)).toBe(true);
    expect(seen.filter((p) => p.src === w3.ip || p.dst === w3.ip)).toEqual([]);
    fs.rmSync(file, { force: true });
  });
});
