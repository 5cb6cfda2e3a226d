// Live DataplaneParams on the worker loop (MemDevices, no root, no threads): a datastore change that
// brings a new node (tunnel peer) and turns natOutgoing on for the first time (no NAT table existed)
// goes through the Reprogrammer to a `params` message, applied between two rounds while two workloads
// ping each other and one sends to the internet. Nothing is lost, the graph is not rebuilt, packets
// ip4-arp holds survive, and from the next round on the new peer is decapsulated and the workload's
// traffic to the internet is masqueraded (and its replies translated back).
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { World, UPLINK } from './world.js';
import { EE, arp, icmpL4, ip4, ipStr, ping, PAYLOAD } from '../dataplane/frames.js';
import { GW_IP, GW_MAC, NAT_IP, NODE_IP, UPLINK_MAC, W1, W2, clusterYaml } from '../dataplane/harness.js';
import { loadConfigText } from '../../src/control/config/load.js';
import { Reprogrammer } from '../../src/control/daemon/reprogram.js';
import { uplinkFilterExpr } from '../../src/control/daemon/uplink-filter.js';
import { IPPROTO_ICMP, IPPROTO_IPIP } from '../../src/dataplane/wire/ipv4.js';

const A = { name: W1.port, ip: W1.ip, mac: W1.mac };
const B = { name: W2.port, ip: W2.ip, mac: W2.mac };
const NODE_C_IP = '10.0.0.3';
const OUTSIDE = '192.0.2.7';

const ids = (frames: Uint8Array[]): number[] => frames.map((f) => (f[18] << 8) | f[19]);
const src = (f: Uint8Array): string => ipStr((f[26] << 24) | (f[27] << 16) | (f[28] << 8) | f[29]);

/** The cluster after the change: pool-a masquerades, and node-c joined. */
function changedYaml(staticNeighbors: boolean): string {
  return (
    clusterYaml({ staticNeighbors }).replace(
      'spec: { cidr: 10.65.0.0/16, ipipMode: Never, vxlanMode: Never }',
      'spec: { cidr: 10.65.0.0/16, ipipMode: Never, vxlanMode: Never, natOutgoing: true }',
    ) +
    `---
apiVersion: projectcalico.org/v3
kind: Node
metadata: { name: node-c }
spec: { bgp: { ipv4Address: ${NODE_C_IP}/24 } }
`
  );
}

/** IPIP from node-c to our node IP carrying a ping to workload A. */
function ipipFromC(id: number): Uint8Array {
  const inner = ping({ ethSrc: EE, src: '10.65.0.130', dst: A.ip, id }).subarray(14);
  return ip4({
    ethSrc: GW_MAC,
    ethDst: UPLINK_MAC,
    ipSrc: NODE_C_IP,
    ipDst: NODE_IP,
    proto: IPPROTO_IPIP,
    l4: inner,
  });
}

describe('live DataplaneParams on the worker loop', () => {
  it('a new tunnel peer and the first natOutgoing pool apply mid-traffic: nothing lost, no rebuild', () => {
    const w = new World({ staticNeighbors: false });
    w.drain();
    const graph = w.loop.built.graph;
    expect(w.prog.env.nat).toBeNull();
    const reprog = new Reprogrammer(
      w.prog,
      {
        bgp: null,
        publishParams: () =>
          w.inbox.push({
            type: 'params',
            seq: 1000,
            params: w.prog.env.params,
            nat: w.prog.tables.nat?.shared ?? null,
          }),
        log: pino({ level: 'silent' }),
      },
      true,
    );
    const up = w.dev(UPLINK);
    // the gateway's MAC is unknown: the first packet to the internet is held by ip4-arp
    w.dev(A.name).inject(ping({ ethSrc: A.mac, ethDst: EE, src: A.ip, dst: OUTSIDE, id: 5000 }));
    w.round();
    expect(up.take()).toHaveLength(1); // the ARP request
    // before the change: node-c is no tunnel peer
    up.inject(ipipFromC(7000));
    w.round();
    expect(w.c('ipip4-input: unknown-peer')).toBe(1);
    let sent = 0;
    const traffic = (rounds: number): void => {
      for (let r = 0; r < rounds; r++) {
        for (let j = 0; j < 20; j++) {
          w.dev(A.name).inject(ping({ ethSrc: A.mac, ethDst: EE, src: A.ip, dst: B.ip, id: sent }));
          w.dev(B.name).inject(ping({ ethSrc: B.mac, ethDst: EE, src: B.ip, dst: A.ip, id: sent }));
          sent++;
        }
        w.round();
      }
    };
    traffic(5);
    // the change, while frames are still queued on the devices
    for (let j = 0; j < 20; j++) {
      w.dev(A.name).inject(ping({ ethSrc: A.mac, ethDst: EE, src: A.ip, dst: B.ip, id: sent }));
      w.dev(B.name).inject(ping({ ethSrc: B.mac, ethDst: EE, src: B.ip, dst: A.ip, id: sent }));
      sent++;
    }
    const res = reprog.apply(loadConfigText(changedYaml(false), 'changed.yaml'));
    expect(res.params).toEqual(['tunnelPeers', 'pools', 'nat']);
    expect(w.prog.env.nat).not.toBeNull();
    traffic(5);
    w.drain();
    expect(w.applied()).toContain(1000);
    expect(w.loop.built.graph).toBe(graph);
    // not one ping between the workloads lost, in order
    expect(ids(w.dev(B.name).take())).toEqual([...Array(sent).keys()]);
    expect(ids(w.dev(A.name).take())).toEqual([...Array(sent).keys()]);
    // the held packet leaves once the gateway answers, masqueraded now (it passes ip4-output after)
    up.inject(arp({ op: 2, sha: GW_MAC, spa: GW_IP, tha: UPLINK_MAC, tpa: NODE_IP, dst: UPLINK_MAC }));
    w.drain();
    const held = up.take();
    expect(ids(held)).toEqual([5000]);
    expect(src(held[0])).toBe(NAT_IP);
    // node-c is a tunnel peer now: its IPIP is decapsulated and reaches the workload
    up.inject(ipipFromC(7001));
    w.drain();
    expect(w.c('ipip4-input: unknown-peer')).toBe(1);
    expect(ids(w.dev(A.name).take())).toEqual([7001]);
    // a new flow to the internet is masqueraded, and the reply comes back to the workload
    w.dev(A.name).inject(ping({ ethSrc: A.mac, ethDst: EE, src: A.ip, dst: OUTSIDE, id: 5001 }));
    w.drain();
    const out = up.take();
    expect(out).toHaveLength(1);
    expect(src(out[0])).toBe(NAT_IP);
    const natId = (out[0][38] << 8) | out[0][39];
    const reply = ip4({
      ethSrc: GW_MAC,
      ethDst: UPLINK_MAC,
      ipSrc: OUTSIDE,
      ipDst: NAT_IP,
      proto: IPPROTO_ICMP,
      l4: icmpL4(0, 0, (natId << 16) | 1, PAYLOAD),
    });
    up.inject(reply);
    w.drain();
    const back = w.dev(A.name).take();
    expect(back).toHaveLength(1);
    expect(ipStr((back[0][30] << 24) | (back[0][31] << 16) | (back[0][32] << 8) | back[0][33])).toBe(A.ip);
    expect(w.c('snat4-in2out: translated')).toBe(2);
    expect(w.c('snat4-out2in: translated')).toBe(1);
  });

  it('an unchanged configuration sends no params message', () => {
    const w = new World();
    w.drain();
    let published = 0;
    const reprog = new Reprogrammer(
      w.prog,
      { bgp: null, publishParams: () => published++, log: pino({ level: 'silent' }) },
      true,
    );
    expect(reprog.apply(loadConfigText(clusterYaml(), 'same.yaml')).params).toEqual([]);
    expect(published).toBe(0);
    expect(w.prog.env.nat).toBeNull();
  });

  it('the uplink filter follows a new pool (and keeps tunnels, NAT replies and owned addresses)', () => {
    const w = new World();
    const before = uplinkFilterExpr(w.prog.cfg, w.prog.env.params, 'node-a');
    const yaml = `${changedYaml(true)}---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: { name: pool-b }
spec: { cidr: 10.70.0.0/16, natOutgoing: true }
`;
    let published = 0;
    const reprog = new Reprogrammer(
      w.prog,
      { bgp: null, publishParams: () => published++, log: pino({ level: 'silent' }) },
      true,
    );
    expect(reprog.apply(loadConfigText(yaml, 'b.yaml')).params).toEqual(['tunnelPeers', 'pools', 'nat']);
    expect(published).toBe(1);
    const after = uplinkFilterExpr(w.prog.cfg, w.prog.env.params, 'node-a');
    expect(before).not.toContain('10.70.0.0/16');
    expect(after).toBe(
      'arp or (ip and (dst net 10.65.0.0/16 or dst net 10.70.0.0/16 or ' +
        `(dst host ${NODE_IP} and (ip proto 4 or (udp dst port 4789))) or ` +
        `(dst host ${NAT_IP} and (icmp or ((tcp or udp) and dst portrange 32768-60999))) or dst host ${NAT_IP}))`,
    );
  });
});
