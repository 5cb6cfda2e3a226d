// Three calitap hosts (node-1 and node-2 on 10.0.0.0/24, node-3 on 10.1.0.0/24 behind the router),
// one workload each, routes from the config's block affinities (no BGP). For each pool mode the FIB
// (`calitap routes`) says how each remote block is reached, and tcpdump on host 1's switch port shows
// the traffic really goes that way: IPIP (IP proto 4), VXLAN (UDP 4789) or plain.
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, type LabMode } from '../../src/lab/lab.js';
import {
  captured,
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

type W = { ns: string; ip: string; name: string };
type Carrier = 'ipip' | 'vxlan' | 'plain';

interface Case {
  mode: LabMode;
  tag: string;
  hosts: number;
  title: string;
  /** node-1's route to node-2's and node-3's block */
  via2: string;
  via3?: string;
  mtu: number;
}

const CASES: Case[] = [
  { mode: 'ipip', tag: 'ei', hosts: 3, title: 'IPIP Always', via2: 'ipip', via3: 'ipip', mtu: 1480 },
  { mode: 'vxlan', tag: 'ev', hosts: 3, title: 'VXLAN Always', via2: 'vxlan', via3: 'vxlan', mtu: 1450 },
  {
    mode: 'ipip-crosssubnet',
    tag: 'ec',
    hosts: 3,
    title: 'IPIP CrossSubnet',
    via2: 'direct',
    via3: 'ipip',
    mtu: 1480,
  },
  { mode: 'never', tag: 'en', hosts: 2, title: 'Never (one subnet)', via2: 'direct', mtu: 1500 },
];

const NODE_IP = ['', '10.0.0.1', '10.0.0.2', '10.1.0.3'];
const BLOCK = ['', '10.65.0.0/26', '10.65.0.64/26', '10.65.0.128/26'];

function carrier(via: string): Carrier {
  return via === 'ipip' || via === 'vxlan' ? via : 'plain';
}

/** Which way a captured packet between two workload addresses travelled, or null if unrelated. */
function classify(p: Ip4Packet): { carrier: Carrier; src: string; dst: string; outer: Ip4Packet } | null {
  if (p.proto === 4 && p.inner) return { carrier: 'ipip', src: p.inner.src, dst: p.inner.dst, outer: p };
  if (p.udpDst === 4789 && p.inner) return { carrier: 'vxlan', src: p.inner.src, dst: p.inner.dst, outer: p };
  if (p.src.startsWith('10.65.') || p.dst.startsWith('10.65.'))
    return { carrier: 'plain', src: p.src, dst: p.dst, outer: p };
  return null;
}

for (const c of CASES) {
  describe.skipIf(!isRoot())(`${c.title}: ${c.hosts} hosts (requires root: network namespaces)`, () => {
    let lab: Lab;
    const w: W[] = [];

    beforeAll(async () => {
      lab = Lab.create({ prefix: prefix(c.tag), mode: c.mode, hosts: c.hosts, workers: 1 });
      for (let k = 1; k <= c.hosts; k++) await lab.start(k);
      for (let k = 1; k <= c.hosts; k++) w[k] = await lab.addWorkload(k);
      for (let k = 2; k <= c.hosts; k++) await waitPing(w[1].ns, w[k].ip, 8000);
    });

    afterAll(async () => {
      await killAll();
      await lab?.destroyAsync();
    });

    it('programs the routes from the block affinities as the pool mode says', async () => {
      const r1 = await routes(lab, 1);
      const own = routeFor(r1, BLOCK[1]);
      expect(own, JSON.stringify(r1)).toMatchObject({ via: 'blackhole', source: 'ipam' });
      const wl = routeFor(r1, `${w[1].ip}/32`);
      expect(wl?.via).toBe('local');
      expect(wl?.source).toBe('workload');
      expect(routeFor(r1, '0.0.0.0/0')).toMatchObject({ via: 'gateway', nextHop: '10.0.0.254' });
      // remote blocks come from the BlockAffinities (source ipam), not from BGP (off in the lab)
      expect(routeFor(r1, BLOCK[2])).toMatchObject({ via: c.via2, nextHop: NODE_IP[2], source: 'ipam' });
      expect(r1.filter((r) => r.source === 'bgp')).toEqual([]);
      if (c.via3 !== undefined)
        expect(routeFor(r1, BLOCK[3])).toMatchObject({ via: c.via3, nextHop: NODE_IP[3], source: 'ipam' });
      // no route for a workload of another node: its block covers it
      expect(routeFor(r1, `${w[2].ip}/32`)).toBeUndefined();
      if (c.hosts >= 3) {
        // node-3 is alone in its subnet: CrossSubnet encapsulates toward both others
        const r3 = await routes(lab, 3);
        const via = c.mode === 'never' ? 'direct' : c.mode === 'vxlan' ? 'vxlan' : 'ipip';
        expect(routeFor(r3, BLOCK[1])).toMatchObject({ via, nextHop: NODE_IP[1] });
        expect(routeFor(r3, BLOCK[2])).toMatchObject({ via, nextHop: NODE_IP[2] });
      }
    });

    it(`gives workloads the tunnel MTU (${c.mtu})`, async () => {
      const j = JSON.parse((await run(w[1].ns, ['ip', '-j', 'link', 'show', 'eth0'])).stdout) as {
        mtu: number;
      }[];
      expect(j[0].mtu).toBe(c.mtu);
    });

    it('carries ping and TCP between workloads on every pair of hosts', async () => {
      for (let a = 1; a <= c.hosts; a++) {
        for (let b = 1; b <= c.hosts; b++) {
          if (a === b) continue;
          const r = await ping(w[a].ns, w[b].ip, { count: 2, interval: 0.1 });
          expect(r.received, `w${a} -> w${b}: ${r.out}`).toBe(2);
        }
      }
      const far = c.hosts;
      const x = await tcpExchange(w[far].ns, w[1].ns, w[far].ip, 7100, 'to the far side\n', 'and back\n');
      expect(x.serverGot).toBe('to the far side\n');
      expect(x.clientGot).toBe('and back\n');
      expect(x.serverLog).toContain(w[1].ip);
    });

    it('encapsulates on the underlay exactly as the routes say (tcpdump on host 1’s switch port)', async () => {
      const file = path.join(lab.dir, 'underlay.pcap');
      const cap = await startCapture(`${lab.o.prefix}sw`, 's1', file);
      const n = 4;
      const between = (pkts: Ip4Packet[], k: number) =>
        pkts
          .map(classify)
          .filter((x) => x !== null)
          .filter(
            (x) => (x.src === w[1].ip && x.dst === w[k].ip) || (x.src === w[k].ip && x.dst === w[1].ip),
          );
      const hosts = Array.from({ length: c.hosts - 1 }, (_, i) => i + 2);
      try {
        for (const k of hosts) {
          const r = await ping(w[1].ns, w[k].ip, { count: n, interval: 0.05 });
          expect(r.received, r.out).toBe(n);
        }
        // requests and replies of every ping written before tcpdump is stopped
        await captured(file, (pkts) => hosts.every((k) => between(pkts, k).length >= 2 * n));
      } finally {
        await cap.stop('SIGINT');
      }
      const all = readPcapIp4(file);
      const seen = all.map(classify).filter((x) => x !== null);
      for (const k of hosts) {
        const via = k === 2 ? c.via2 : c.via3!;
        const flows = between(all, k);
        const summary = JSON.stringify(flows.map((x) => `${x.carrier} ${x.outer.src}>${x.outer.dst}`));
        // requests and replies, all carried the one expected way
        expect(flows.length, summary).toBeGreaterThanOrEqual(2 * n);
        expect(new Set(flows.map((x) => x.carrier)), summary).toEqual(new Set([carrier(via)]));
        if (via === 'ipip' || via === 'vxlan') {
          for (const x of flows) {
            const out = x.src === w[1].ip;
            expect(x.outer.src).toBe(out ? NODE_IP[1] : NODE_IP[k]);
            expect(x.outer.dst).toBe(out ? NODE_IP[k] : NODE_IP[1]);
          }
        }
      }
      // nothing else tunnelled: no IPIP at all in VXLAN/Never mode, none inside the subnet in CrossSubnet
      const ipip = seen.filter((x) => x.carrier === 'ipip');
      if (c.via2 !== 'ipip')
        expect(ipip.filter((x) => [x.outer.src, x.outer.dst].includes(NODE_IP[2]))).toEqual([]);
      if (c.via3 !== 'ipip') expect(ipip).toEqual([]);
    });
  });
}
