// natOutgoing: workloads reach the lab's "internet" server 203.0.113.10 (behind the router) with their
// source translated to their node's natOutgoingAddress (10.0.0.101 for node-1, 10.1.0.103 for node-3,
// addresses calitap answers ARP for on the uplink); replies are translated back. Traffic between
// workloads (destination inside the pool) is not translated.
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../../src/lab/lab.js';
import {
  bg,
  captured,
  counters,
  delta,
  isRoot,
  killAll,
  ping,
  prefix,
  readPcapIp4,
  startCapture,
  tcpExchange,
  udpSend,
  waitListening,
  waitPing,
  run,
} from './helpers.js';

type W = { ns: string; ip: string; name: string };
const SERVER = '203.0.113.10';

describe.skipIf(!isRoot())('natOutgoing to the internet server (requires root: network namespaces)', () => {
  let lab: Lab;
  let srv: string;
  let w1: W;
  let w3: W;

  beforeAll(async () => {
    lab = Lab.create({ prefix: prefix('nt'), mode: 'ipip', hosts: 3, workers: 1 });
    srv = `${lab.o.prefix}srv`;
    await lab.start(1);
    await lab.start(3);
    w1 = await lab.addWorkload(1);
    w3 = await lab.addWorkload(3);
    await waitPing(w1.ns, SERVER, 8000);
  });

  // With TX checksum offload on (the veth default), the server's segments reach host 1's AF_PACKET
  // uplink as CHECKSUM_PARTIAL (the checksum field holds only the pseudo-header sum). The uplink
  // socket reads a virtio_net_hdr with every frame and calitap completes such checksums before
  // translating: the whole suite runs with offload on.
  it('TCP from a server whose frames arrive with partial checksums', async () => {
    const s = bg(srv, ['nc', '-n', '-l', '8079']);
    try {
      await waitListening(srv, 'tcp', 8079);
      const c = await run(w1.ns, ['nc', '-n', '-z', '-w', '1', SERVER, '8079'], 5000);
      expect(c.code).toBe(0);
    } finally {
      await s.stop('SIGKILL');
    }
  });

  afterAll(async () => {
    await killAll();
    await lab?.destroyAsync();
  });

  it('pings the server; the server sees node-1’s natOutgoingAddress', async () => {
    const file = path.join(lab.dir, 'srv-icmp.pcap');
    const cap = await startCapture(srv, 'eth0', file, ['icmp']);
    const before = await counters(lab, 1);
    let r;
    try {
      r = await ping(w1.ns, SERVER, { count: 3, interval: 0.1 });
      await captured(file, (pkts) => pkts.filter((p) => p.src === SERVER).length >= 3);
    } finally {
      await cap.stop('SIGINT');
    }
    expect(r.received, r.out).toBe(3);
    const seen = readPcapIp4(file);
    const req = seen.filter((p) => p.dst === SERVER);
    expect(req.length).toBeGreaterThanOrEqual(3);
    expect(new Set(req.map((p) => p.src))).toEqual(new Set(['10.0.0.101']));
    expect(seen.filter((p) => p.src.startsWith('10.65.') || p.dst.startsWith('10.65.'))).toEqual([]);
    const d = delta(before, await counters(lab, 1));
    expect(d['snat4-in2out: translated'], JSON.stringify(d)).toBeGreaterThanOrEqual(3);
    expect(d['snat4-out2in: translated'], JSON.stringify(d)).toBeGreaterThanOrEqual(3);
  });

  it('carries TCP both ways; the server’s peer is 10.0.0.101 with a port from the NAT range', async () => {
    const x = await tcpExchange(srv, w1.ns, SERVER, 8080, 'GET / from w1\n', 'reply from the internet\n');
    expect(x.serverGot).toBe('GET / from w1\n');
    expect(x.clientGot).toBe('reply from the internet\n');
    const m = /(\d+\.\d+\.\d+\.\d+)\D+(\d+)/.exec(
      x.serverLog.split('\n').find((l) => /[Cc]onnection/.test(l)) ?? '',
    );
    expect(m, x.serverLog).not.toBeNull();
    expect(m![1]).toBe('10.0.0.101');
    expect(Number(m![2])).toBeGreaterThanOrEqual(32768);
    expect(Number(m![2])).toBeLessThanOrEqual(60999);
  });

  it('carries UDP out and the server sees the translated source', async () => {
    const file = path.join(lab.dir, 'srv-udp.pcap');
    const cap = await startCapture(srv, 'eth0', file, ['udp', 'port', '8081']);
    let got;
    try {
      got = await udpSend(srv, w1.ns, SERVER, 8081, 'udp-through-nat');
      await captured(file, (pkts) => pkts.some((p) => p.dst === SERVER));
    } finally {
      await cap.stop('SIGINT');
    }
    expect(got).toContain('udp-through-nat');
    const seen = readPcapIp4(file).filter((p) => p.dst === SERVER);
    expect(seen.length).toBeGreaterThanOrEqual(1);
    expect(new Set(seen.map((p) => p.src))).toEqual(new Set(['10.0.0.101']));
  });

  it('uses each node’s own address: node-3 (other subnet) translates to 10.1.0.103', async () => {
    await waitPing(w3.ns, SERVER, 8000);
    const x = await tcpExchange(srv, w3.ns, SERVER, 8082, 'hi from w3\n', 'hi w3\n');
    expect(x.serverGot).toBe('hi from w3\n');
    expect(x.clientGot).toBe('hi w3\n');
    expect(x.serverLog).toContain('10.1.0.103');
  });

  it('does not translate traffic to another workload (destination in the pool)', async () => {
    const x = await tcpExchange(w3.ns, w1.ns, w3.ip, 8083, 'pod to pod\n', 'ok\n');
    expect(x.clientGot).toBe('ok\n');
    expect(x.serverLog).toContain(w1.ip);
    expect(x.serverLog).not.toContain('10.0.0.101');
  });
});
