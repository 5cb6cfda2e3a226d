// `calitap run --uplink udp`: VXLAN between nodes over a kernel UDP socket per worker (SO_REUSEPORT on
// the node IP and port 4789) instead of the AF_PACKET uplink.
// Unit part (no root): the outer header the worker synthesizes in front of a received VXLAN payload
// (bytes, IPv4 header checksum), the transmit side's VXLAN classification, the start-up checks and
// the programmer's static placeholder neighbours.
// Live part (root): three hosts in VXLAN mode with `--uplink udp` (node-1 and node-2 on one subnet,
// node-3 behind the router): ping and TCP between workloads, routes via vxlan, VXLAN on the underlay,
// natOutgoing traffic dropped and counted, interoperation with a node on the packet uplink, and the
// daemon refusing an IPIP pool.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, labConfig, nsExec, REPO } from '../../src/lab/lab.js';
import { loadConfigText } from '../../src/control/config/load.js';
import { checkUdpUplink } from '../../src/control/daemon/daemon.js';
import { Programmer } from '../../src/control/daemon/program.js';
import { parseIp4 } from '../../src/common/addr.js';
import { UDP_OUTER_LEN, synthVxlanOuter, vxlanFrame, vxlanPayload } from '../../src/dataplane/devices/udp.js';
import {
  captured,
  counters,
  delta,
  isRoot,
  killAll,
  ping,
  prefix,
  readPcapIp4,
  routeFor,
  routes,
  run,
  startCapture,
  tcpExchange,
  waitPing,
  type Ip4Packet,
} from './helpers.js';

const hex = (u8: Uint8Array, from: number, to: number): string =>
  Buffer.from(u8.subarray(from, to)).toString('hex');

/** One's-complement sum (folded) of `len` bytes: 0xffff over a header with a correct checksum. */
function onesSum(u8: Uint8Array, off: number, len: number): number {
  let s = 0;
  for (let k = 0; k < len; k += 2) s += (u8[off + k] << 8) | u8[off + k + 1];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

describe('udp uplink: outer header synthesis and VXLAN classification', () => {
  const OUR_MAC = new Uint8Array([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x52, 0x54, 0, 0x12, 0x34, 0x56]);

  it('writes Ethernet + IPv4 + UDP in front of the payload, checksum valid, payload untouched', () => {
    const u8 = new Uint8Array(256).fill(0xa5);
    const off = 64;
    const payload = Uint8Array.from({ length: 30 }, (_, k) => k);
    u8.set(payload, off + UDP_OUTER_LEN);
    // sender 10.0.0.2:51234 → us 10.0.0.1:4789; our MAC is port 1's (offset 6) in this table
    const n = synthVxlanOuter(u8, off, 30, OUR_MAC, 6, 0x0a000002, 51234, 0x0a000001, 4789);
    expect(n).toBe(72);
    expect(hex(u8, off, off + 14)).toBe('525400123456' + '020000000000' + '0800');
    // version/IHL, TOS, total 58, id 0, no flags, TTL 64, UDP, checksum, src, dst
    expect(hex(u8, off + 14, off + 34)).toBe(
      '4500003a' + '00000000' + '4011' + hex(u8, off + 24, off + 26) + '0a000002' + '0a000001',
    );
    expect(onesSum(u8, off + 14, 20)).toBe(0xffff);
    // the checksum is the RFC 1071 one for these ten words (computed independently)
    expect(hex(u8, off + 24, off + 26)).toBe('66b1');
    // UDP: 51234 → 4789, length 38, checksum 0 (none)
    expect(hex(u8, off + 34, off + 42)).toBe('c822' + '12b5' + '0026' + '0000');
    expect(Array.from(u8.subarray(off + 42, off + 72))).toEqual(Array.from(payload));
    // nothing in front of the frame or after the payload was touched
    expect(u8[off - 1]).toBe(0xa5);
    expect(u8[off + 72]).toBe(0xa5);
  });

  it('gives a valid header checksum for addresses that carry in the sum', () => {
    const u8 = new Uint8Array(2048);
    for (const [src, dst, len] of [
      [0xffffffff, 0xfffffffe, 1472],
      [0xc0a80101, 0x0a000001, 0],
      [0x0a010003, 0xfefefefe, 1000],
    ]) {
      synthVxlanOuter(u8, 0, len, OUR_MAC, 0, src >>> 0, 65535, dst >>> 0, 4789);
      expect(onesSum(u8, 14, 20)).toBe(0xffff);
      expect((u8[16] << 8) | u8[17]).toBe(28 + len);
    }
  });

  it('finds the UDP payload of VXLAN frames and refuses everything else', () => {
    const u8 = new Uint8Array(256);
    synthVxlanOuter(u8, 10, 50, OUR_MAC, 0, 0x0a000001, 4789, 0x0a010003, 4789);
    expect(vxlanPayload(u8, 10, 92, 4789)).toBe(10 + UDP_OUTER_LEN);
    expect(vxlanFrame).toEqual({ len: 50, dst: 0x0a010003 });
    // Ethernet padding after the datagram is ignored
    expect(vxlanPayload(u8, 10, 120, 4789)).toBe(52);
    expect(vxlanFrame.len).toBe(50);
    const bad = (mutate: (b: Uint8Array) => void, len = 92, port = 4789): number => {
      const b = u8.slice();
      mutate(b);
      return vxlanPayload(b, 10, len, port);
    };
    expect(bad(() => {}, 92, 8472)).toBe(-1); // another port
    expect(bad((b) => (b[10 + 13] = 0x06))).toBe(-1); // ethertype ARP
    expect(bad((b) => (b[10 + 23] = 6))).toBe(-1); // TCP
    expect(bad((b) => (b[10 + 14] = 0x65))).toBe(-1); // IPv6 version nibble
    expect(bad((b) => (b[10 + 20] = 0x20))).toBe(-1); // MF
    expect(bad((b) => (b[10 + 21] = 0x01))).toBe(-1); // fragment offset
    expect(bad(() => {}, 91)).toBe(-1); // IPv4 total length beyond the frame
    expect(bad((b) => (b[10 + 38] = 0x01))).toBe(-1); // UDP length beyond the IPv4 payload
    expect(bad(() => {}, 41)).toBe(-1); // shorter than the outer headers
  });
});

describe('udp uplink: start-up checks and neighbours', () => {
  const cfg = (mode: 'ipip' | 'vxlan' | 'vxlan-crosssubnet' | 'never', hosts = 3) =>
    loadConfigText(labConfig({ prefix: 'x', mode, hosts }), 'lab.yaml');

  it('refuses IPIP, Never and CrossSubnet with a same-subnet node, in one line', () => {
    const msg = (mode: 'ipip' | 'never' | 'vxlan-crosssubnet'): string => {
      try {
        checkUdpUplink(cfg(mode), 'node-1');
      } catch (e) {
        return (e as Error).message;
      }
      return 'accepted';
    };
    for (const mode of ['ipip', 'never', 'vxlan-crosssubnet'] as const) {
      const m = msg(mode);
      expect(m).toContain('udp mode carries only VXLAN between nodes');
      expect(m).toContain('IPPool lab-pool');
      expect(m).not.toContain('\n');
    }
    expect(msg('ipip')).toContain('spec.ipipMode Always');
    expect(msg('vxlan-crosssubnet')).toContain('node node-2');
    // node-3 is alone in its subnet: CrossSubnet always encapsulates there
    expect(checkUdpUplink(cfg('vxlan-crosssubnet'), 'node-3')).toHaveLength(1);
  });

  it('accepts VXLAN Always and warns about natOutgoing', () => {
    const w = checkUdpUplink(cfg('vxlan'), 'node-1');
    expect(w).toHaveLength(1);
    expect(w[0]).toContain('udp-uplink: not-vxlan');
  });

  it('makes every uplink next hop a static neighbour with the placeholder MAC (no ARP)', () => {
    const udp = new Programmer(cfg('vxlan'), 'node-1', { uplinkMac: '02:11:22:33:44:55', uplinkL2: false });
    const e = udp.env.nbr.entries();
    const ips = e.map((x) => x.ip).sort();
    // node-2 and the gateway (node-3, in another subnet, is reached through it)
    expect(ips).toEqual(['10.0.0.2', '10.0.0.254'].map((a) => parseIp4(a)!).sort());
    for (const x of e) expect(x).toMatchObject({ state: 'static', mac: '02:00:00:00:00:00' });
    const l2 = new Programmer(cfg('vxlan'), 'node-1', { uplinkMac: '02:11:22:33:44:55' });
    for (const x of l2.env.nbr.entries()) expect(x.state).toBe('incomplete');
  });
});

type W = { ns: string; ip: string; name: string };
const NODE_IP = ['', '10.0.0.1', '10.0.0.2', '10.1.0.3'];
const BLOCK = ['', '10.65.0.0/26', '10.65.0.64/26', '10.65.0.128/26'];

describe.skipIf(!isRoot())(
  'udp uplink: VXLAN over kernel UDP sockets, 3 hosts (requires root: network namespaces)',
  () => {
    let lab: Lab;
    const w: W[] = [];

    beforeAll(async () => {
      // two workers per host: two SO_REUSEPORT sockets share the VXLAN port
      lab = Lab.create({ prefix: prefix('uu'), mode: 'vxlan', hosts: 3, workers: 2, uplink: 'udp' });
      for (let k = 1; k <= 3; k++) await lab.start(k);
      for (let k = 1; k <= 3; k++) w[k] = await lab.addWorkload(k);
      for (let k = 2; k <= 3; k++) await waitPing(w[1].ns, w[k].ip, 8000);
    });

    afterAll(async () => {
      await killAll();
      await lab?.destroyAsync();
    });

    it('runs in udp mode: the daemon says so and warns about natOutgoing', () => {
      const log = fs.readFileSync(lab.hosts[0].log, 'utf8');
      expect(log).toContain('"uplink":"udp"');
      expect(log).toContain('udp-uplink: not-vxlan');
    });

    it('listens with one SO_REUSEPORT UDP socket per worker on the node IP, no packet socket', () => {
      for (const h of lab.hosts) {
        const udp = nsExec(h.ns, ['ss', '-Hlun', 'sport = :4789']).trim().split('\n');
        expect(udp, udp.join('\n')).toHaveLength(2);
        for (const l of udp) expect(l).toContain(`${h.ip}:4789`);
        expect(nsExec(h.ns, ['ss', '-H', '-0', '-a']).trim()).toBe('');
      }
    });

    it('routes every remote block via vxlan', async () => {
      for (let k = 1; k <= 3; k++) {
        const r = await routes(lab, k);
        for (let j = 1; j <= 3; j++) {
          if (j === k) continue;
          expect(routeFor(r, BLOCK[j]), JSON.stringify(r)).toMatchObject({
            via: 'vxlan',
            nextHop: NODE_IP[j],
          });
        }
      }
    });

    it('carries ping between workloads on the same subnet and across the router', async () => {
      for (const [a, b] of [
        [1, 2],
        [2, 1],
        [1, 3],
        [3, 1],
        [2, 3],
        [3, 2],
      ]) {
        const r = await ping(w[a].ns, w[b].ip, { count: 3, interval: 0.1 });
        expect(r.received, `w${a} -> w${b}: ${r.out}`).toBe(3);
      }
      // the largest unfragmented packet the tunnel MTU (1450) allows: a 1472-byte UDP payload each way
      const big = await ping(w[1].ns, w[3].ip, { count: 2, interval: 0.1, size: 1422, df: true });
      expect(big.received, big.out).toBe(2);
    });

    it('carries TCP (nc) both ways, across the router and within the subnet', async () => {
      const x = await tcpExchange(w[3].ns, w[1].ns, w[3].ip, 7200, 'over udp\n', 'and back\n');
      expect(x.serverGot).toBe('over udp\n');
      expect(x.clientGot).toBe('and back\n');
      expect(x.serverLog).toContain(w[1].ip);
      const y = await tcpExchange(w[1].ns, w[2].ns, w[1].ip, 7201, 'same subnet\n', 'ok\n');
      expect(y.serverGot).toBe('same subnet\n');
      expect(y.clientGot).toBe('ok\n');
    });

    it('sends VXLAN (UDP 4789) between the node IPs on the underlay, nothing plain', async () => {
      const file = path.join(lab.dir, 'underlay.pcap');
      const cap = await startCapture(`${lab.o.prefix}sw`, 's1', file);
      const n = 4;
      const flows = (pkts: Ip4Packet[], k: number) =>
        pkts.filter(
          (p) =>
            p.inner !== undefined &&
            ((p.inner.src === w[1].ip && p.inner.dst === w[k].ip) ||
              (p.inner.src === w[k].ip && p.inner.dst === w[1].ip)),
        );
      try {
        for (const k of [2, 3]) {
          const r = await ping(w[1].ns, w[k].ip, { count: n, interval: 0.05 });
          expect(r.received, r.out).toBe(n);
        }
        await captured(file, (pkts) => [2, 3].every((k) => flows(pkts, k).length >= 2 * n));
      } finally {
        await cap.stop('SIGINT');
      }
      const all = readPcapIp4(file);
      for (const k of [2, 3]) {
        const f = flows(all, k);
        expect(f.length, JSON.stringify(f)).toBeGreaterThanOrEqual(2 * n);
        for (const p of f) {
          expect(p.proto).toBe(17);
          expect(p.udpDst).toBe(4789);
          const out = p.inner!.src === w[1].ip;
          expect(p.src).toBe(out ? NODE_IP[1] : NODE_IP[k]);
          expect(p.dst).toBe(out ? NODE_IP[k] : NODE_IP[1]);
        }
      }
      // no workload address travels unencapsulated, no IPIP
      expect(all.filter((p) => p.src.startsWith('10.65.') || p.dst.startsWith('10.65.'))).toEqual([]);
      expect(all.filter((p) => p.proto === 4)).toEqual([]);
    });

    it('decapsulates through vxlan4-input and never waits for ARP', async () => {
      const before = await counters(lab, 1);
      const r = await ping(w[1].ns, w[3].ip, { count: 3, interval: 0.1 });
      expect(r.received, r.out).toBe(3);
      const d = delta(before, await counters(lab, 1));
      expect(d['vxlan4-encap: encapsulated'], JSON.stringify(d)).toBeGreaterThanOrEqual(3);
      expect(d['vxlan4-input: decapsulated'], JSON.stringify(d)).toBeGreaterThanOrEqual(3);
      const all = await counters(lab, 1);
      expect(all.get('ip4-rewrite: neighbor-unresolved') ?? 0).toBe(0);
    });

    it('drops and counts traffic leaving the pools (natOutgoing needs the packet uplink)', async () => {
      const before = await counters(lab, 1);
      const r = await ping(w[1].ns, '203.0.113.10', { count: 2, interval: 0.1, wait: 0.5 });
      expect(r.received).toBe(0);
      const d = delta(before, await counters(lab, 1));
      expect(d['udp-uplink: not-vxlan'], JSON.stringify(d)).toBe(2);
    });

    it('interoperates with a node on the packet uplink (node-2 restarted with --uplink packet)', async () => {
      await lab.stop(2);
      await lab.start(2, 20_000, 'packet');
      expect(fs.readFileSync(lab.hosts[1].log, 'utf8')).toContain('"uplink":"packet"');
      await waitPing(w[1].ns, w[2].ip, 8000);
      for (const [a, b] of [
        [1, 2],
        [2, 1],
        [2, 3],
        [3, 2],
      ]) {
        const r = await ping(w[a].ns, w[b].ip, { count: 2, interval: 0.1 });
        expect(r.received, `w${a} -> w${b}: ${r.out}`).toBe(2);
      }
      const x = await tcpExchange(w[2].ns, w[3].ns, w[2].ip, 7202, 'udp to packet\n', 'packet to udp\n');
      expect(x.serverGot).toBe('udp to packet\n');
      expect(x.clientGot).toBe('packet to udp\n');
    });

    it('refuses to start in udp mode with an IPIP pool: one line, non-zero exit', async () => {
      const cfgFile = path.join(lab.dir, 'ipip.yaml');
      fs.writeFileSync(cfgFile, labConfig({ prefix: lab.o.prefix, mode: 'ipip', hosts: 3 }));
      const cli = path.join(REPO, 'bin', 'calitap.js');
      const p = await run(lab.hosts[0].ns, [
        process.execPath,
        cli,
        'run',
        '--config',
        cfgFile,
        '--node',
        'node-1',
        '--uplink',
        'udp',
        '--socket',
        path.join(lab.dir, 'refused.sock'),
        '--state',
        path.join(lab.dir, 'refused.state.json'),
        '--no-bgp',
      ]);
      expect(p.code).not.toBe(0);
      const lines = p.stderr.trim().split('\n');
      expect(lines, p.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(
        /^calitap: .*IPPool lab-pool: spec\.ipipMode Always: --uplink udp: udp mode carries only VXLAN between nodes/,
      );
      // and a bad mode is a usage error
      const q = await run(lab.hosts[0].ns, [
        process.execPath,
        cli,
        'run',
        '--config',
        cfgFile,
        '--node',
        'node-1',
        '--uplink',
        'raw',
      ]);
      expect(q.code).toBe(2);
      expect(q.stderr.trim()).toBe('calitap: --uplink raw: expected packet or udp');
    });
  },
);
