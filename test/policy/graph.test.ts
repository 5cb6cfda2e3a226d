// ip4-policy in the in-memory graph: verdicts, stateful flows (replies, established, INVALID),
// related ICMP errors, fragments, deny counters per endpoint and cause, Log records, and a policy
// change applying to new flows only.
import { describe, expect, it } from 'vitest';
import { Harness } from '../dataplane/harness.js';
import { ip4, ping, udp } from '../dataplane/frames.js';
import { loadConfigText } from '../../src/control/config/load.js';
import { IPPROTO_UDP } from '../../src/dataplane/wire/ipv4.js';
import { API, baseYaml, DB, GW_MAC, OUTSIDE, REMOTE, tcp, TCP_FLAGS, UPLINK_MAC, WEB } from './helpers.js';

const DB_POLICY = `
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: { name: db-from-api, namespace: shop }
spec:
  selector: role == 'db'
  ingress:
    - action: Allow
      protocol: TCP
      source: { selector: role == 'api' }
      destination: { ports: [5432] }
`;

/** A graph for baseYaml + policy; the (cached, shared) programmer is reset to exactly that config. */
function harness(policy: string, trace = false): Harness {
  const yaml = baseYaml() + policy;
  const h = new Harness({ yaml, trace });
  h.prog.policy!.program(loadConfigText(yaml, 't.yaml'));
  h.prog.policy!.flows.clear();
  h.prog.policy!.tables.counters.fill(0);
  return h;
}

const syn = (from: typeof WEB, to: string, dport: number, sport = 40000) =>
  tcp({ ethSrc: from.mac, src: from.ip, dst: to, sport, dport, flags: TCP_FLAGS.SYN });

describe('ip4-policy', () => {
  it('is absent from graphs of configs without policy', () => {
    const h = new Harness({ yaml: baseYaml() });
    expect(h.prog.policy).toBeNull();
    expect(h.g.graph.get('ip4-policy')).toBeUndefined();
  });

  it('denies what no rule allows once a policy selects the endpoint, and counts the cause', () => {
    const h = harness(DB_POLICY);
    expect(h.one(WEB.port, syn(WEB, DB.ip, 5432))).toHaveLength(0);
    expect(h.c('ip4-policy: denied')).toBe(1);
    const rows = h.prog.policy!.counterRows();
    expect(rows).toEqual([
      { node: 'ip4-policy', reason: 'shop/db ingress denied by end of tier default', value: 1 },
    ]);
    // api may; the db's reply and the rest of the connection pass on the flow
    const out = h.one(API.port, syn(API, DB.ip, 5432));
    expect(out.map((t) => t.port)).toEqual([DB.port]);
    expect(h.c('ip4-policy: new-flow')).toBe(1);
    const synack = tcp({
      ethSrc: DB.mac,
      src: DB.ip,
      dst: API.ip,
      sport: 5432,
      dport: 40000,
      flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK,
    });
    expect(h.one(DB.port, synack).map((t) => t.port)).toEqual([API.port]);
    const ack = tcp({
      ethSrc: API.mac,
      src: API.ip,
      dst: DB.ip,
      sport: 40000,
      dport: 5432,
      flags: TCP_FLAGS.ACK,
    });
    expect(h.one(API.port, ack).map((t) => t.port)).toEqual([DB.port]);
    expect(h.c('ip4-policy: new-flow')).toBe(1);
    // UDP to the db: no rule allows it
    expect(h.one(API.port, udp({ ethSrc: API.mac, src: API.ip, dst: DB.ip, dport: 5432 }))).toHaveLength(0);
  });

  it('drops TCP that is not an opening SYN without a flow (INVALID), but not unpoliced traffic', () => {
    const h = harness(DB_POLICY);
    const ack = tcp({ ethSrc: WEB.mac, src: WEB.ip, dst: API.ip, sport: 1, dport: 2, flags: TCP_FLAGS.ACK });
    expect(h.one(WEB.port, ack)).toHaveLength(0);
    expect(h.c('ip4-policy: invalid')).toBe(1);
    const synack = tcp({
      ethSrc: WEB.mac,
      src: WEB.ip,
      dst: API.ip,
      sport: 1,
      dport: 2,
      flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK,
    });
    expect(h.one(WEB.port, synack)).toHaveLength(0);
    expect(h.c('ip4-policy: invalid')).toBe(2);
    // between two addresses that are not local workloads, policy has no say (ip4-lookup decides)
    const transit = tcp({
      ethSrc: GW_MAC,
      ethDst: UPLINK_MAC,
      src: OUTSIDE,
      dst: REMOTE.ip,
      sport: 1,
      dport: 2,
      flags: TCP_FLAGS.ACK,
    });
    h.one('uplink', transit);
    expect(h.c('ip4-policy: invalid')).toBe(2);
  });

  it('after a restart (pickup on) lets policy decide on mid-stream TCP and records the flow', () => {
    const h = harness(DB_POLICY);
    const tables = h.prog.policy!.tables;
    const seg = (from: typeof WEB, to: typeof DB, sport: number, dport: number, flags: number) =>
      tcp({ ethSrc: from.mac, src: from.ip, dst: to.ip, sport, dport, flags });
    tables.pickup = true;
    try {
      // api -> db:5432 is allowed: a mid-stream ACK opens the flow, the db's answer is its reply
      expect(h.one(API.port, seg(API, DB, 40000, 5432, TCP_FLAGS.ACK)).map((t) => t.port)).toEqual([DB.port]);
      expect(h.c('ip4-policy: new-flow')).toBe(1);
      expect(h.one(DB.port, seg(DB, API, 5432, 40000, TCP_FLAGS.ACK)).map((t) => t.port)).toEqual([API.port]);
      expect(h.c('ip4-policy: new-flow')).toBe(1);
      // web -> db is still denied by the policy, not picked up
      expect(h.one(WEB.port, seg(WEB, DB, 40001, 5432, TCP_FLAGS.ACK))).toHaveLength(0);
      expect(h.c('ip4-policy: denied')).toBe(1);
      // RST and SYN-ACK without a flow stay invalid
      expect(h.one(API.port, seg(API, DB, 40002, 5432, TCP_FLAGS.RST | TCP_FLAGS.ACK))).toHaveLength(0);
      expect(h.one(API.port, seg(API, DB, 40003, 5432, TCP_FLAGS.SYN | TCP_FLAGS.ACK))).toHaveLength(0);
      expect(h.c('ip4-policy: invalid')).toBe(2);
    } finally {
      tables.pickup = false;
    }
    // pickup over: a mid-stream segment of an unknown connection is invalid again; the picked one lives
    expect(h.one(API.port, seg(API, DB, 40004, 5432, TCP_FLAGS.ACK))).toHaveLength(0);
    expect(h.c('ip4-policy: invalid')).toBe(3);
    expect(h.one(API.port, seg(API, DB, 40000, 5432, TCP_FLAGS.ACK)).map((t) => t.port)).toEqual([DB.port]);
  });

  it('lets endpoints without policy talk through their namespace profile (kns.<ns> allows all)', () => {
    const h = harness(DB_POLICY);
    expect(h.one(WEB.port, syn(WEB, API.ip, 80)).map((t) => t.port)).toEqual([API.port]);
    expect(h.one(WEB.port, ping({ ethSrc: WEB.mac, src: WEB.ip, dst: OUTSIDE })).map((t) => t.port)).toEqual([
      'uplink',
    ]);
    // the echo reply comes back on the flow
    const reply = ping({ ethSrc: GW_MAC, ethDst: UPLINK_MAC, src: OUTSIDE, dst: WEB.ip, type: 0 });
    expect(h.one('uplink', reply).map((t) => t.port)).toEqual([WEB.port]);
    // an echo reply nobody asked for is INVALID
    const stray = ping({ ethSrc: GW_MAC, ethDst: UPLINK_MAC, src: '192.0.2.99', dst: WEB.ip, type: 0 });
    expect(h.one('uplink', stray)).toHaveLength(0);
    expect(h.c('ip4-policy: invalid')).toBe(1);
  });

  it('passes ICMP errors about a known flow as related', () => {
    const h = harness(DB_POLICY);
    const out = h.one(API.port, udp({ ethSrc: API.mac, src: API.ip, dst: OUTSIDE, sport: 5000, dport: 53 }));
    expect(out).toHaveLength(1);
    // the quoted packet: the one api sent (IP header + first 8 bytes)
    const quote = out[0].bytes.slice(14, 14 + 28);
    quote[8] = 64; // TTL as sent
    const err = ip4({
      ethSrc: GW_MAC,
      ethDst: UPLINK_MAC,
      ipSrc: OUTSIDE,
      ipDst: API.ip,
      proto: 1,
      l4: icmpError(3, 3, quote),
    });
    expect(h.one('uplink', err).map((t) => t.port)).toEqual([API.port]);
    expect(h.c('ip4-policy: related')).toBe(1);
  });

  it('applies a policy change to new flows only', () => {
    const h = harness(DB_POLICY);
    expect(h.one(API.port, syn(API, DB.ip, 5432)).length).toBe(1);
    const cfg = loadConfigText(baseYaml() + DB_POLICY.replace("role == 'api'", "role == 'web'"), 't.yaml');
    h.prog.policy!.program(cfg);
    // the open connection keeps going
    const ack = tcp({
      ethSrc: API.mac,
      src: API.ip,
      dst: DB.ip,
      sport: 40000,
      dport: 5432,
      flags: TCP_FLAGS.ACK,
    });
    expect(h.one(API.port, ack).length).toBe(1);
    // a new one from api is refused, web now may
    expect(h.one(API.port, syn(API, DB.ip, 5432, 40001))).toHaveLength(0);
    expect(h.one(WEB.port, syn(WEB, DB.ip, 5432, 40002)).length).toBe(1);
  });

  it('forgets expired flows, also for the flow of the previous packet', () => {
    const h = harness(DB_POLICY);
    const ack = tcp({
      ethSrc: API.mac,
      src: API.ip,
      dst: DB.ip,
      sport: 40000,
      dport: 5432,
      flags: TCP_FLAGS.ACK,
    });
    expect(h.one(API.port, syn(API, DB.ip, 5432), 100).length).toBe(1);
    expect(h.one(API.port, ack, 101).length).toBe(1);
    expect(h.one(API.port, ack, 102).length).toBe(1);
    // no reply ever came: a half-open connection lives 20 s (Felix's TCPSynSent)
    const flows = h.prog.policy!.flows;
    expect(flows.expire(130, flows.capacity)).toBe(1);
    expect(h.one(API.port, ack, 131)).toHaveLength(0);
    expect(h.c('ip4-policy: invalid')).toBe(1);
  });

  it('lets later fragments follow an allowed first fragment only', () => {
    const h = harness(DB_POLICY);
    const big = new Uint8Array(3000).fill(7);
    const first = udp({
      ethSrc: API.mac,
      src: API.ip,
      dst: WEB.ip,
      dport: 9,
      payload: big.subarray(0, 32),
      id: 77,
    });
    first[14 + 6] = 0x20; // MF
    first[14 + 10] = 0;
    first[14 + 11] = 0;
    fixIpChecksum(first);
    const later = ip4({
      ethSrc: API.mac,
      ipSrc: API.ip,
      ipDst: WEB.ip,
      proto: IPPROTO_UDP,
      id: 77,
      l4: big.subarray(0, 64),
    });
    later[14 + 6] = 0x00;
    later[14 + 7] = 5; // offset 40 bytes
    fixIpChecksum(later);
    const stray = later.slice();
    stray[14 + 5] = 78; // another datagram's later fragment
    fixIpChecksum(stray);
    expect(h.one(API.port, first).length).toBe(1);
    expect(h.one(API.port, later).length).toBe(1);
    expect(h.one(API.port, stray)).toHaveLength(0);
    expect(h.c('ip4-policy: fragment-without-first')).toBe(1);
  });

  it('drops what a local workload sends when the policy tables do not know it', () => {
    const h = harness(DB_POLICY);
    h.prog.policy!.compiler.removeEndpoint('shop/web');
    h.prog.policy!.publish();
    expect(h.one(WEB.port, syn(WEB, API.ip, 80))).toHaveLength(0);
    expect(h.c('ip4-policy: unknown-endpoint')).toBe(1);
  });

  it('records Log rules, rate-limited', () => {
    const h = harness(`
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: { name: log-all }
spec:
  selector: all()
  types: [Ingress]
  ingress: [{ action: Log }, { action: Allow }]
`);
    for (let k = 0; k < 60; k++)
      h.one(WEB.port, udp({ ethSrc: WEB.mac, src: WEB.ip, dst: API.ip, sport: 1000 + k }));
    expect(h.c('ip4-policy: log')).toBe(50);
    expect(h.c('ip4-policy: log-suppressed')).toBe(10);
    const { lines } = h.prog.policy!.drainLog();
    expect(lines).toHaveLength(50);
    expect(lines[0]).toMatchObject({
      endpoint: 'shop/api ingress',
      src: WEB.ip,
      dst: API.ip,
      sport: 1000,
      dport: 53,
      proto: 17,
    });
    expect(lines[0].rule).toBe('GlobalNetworkPolicy default/log-all');
  });
});

function icmpError(type: number, code: number, quote: Uint8Array): Uint8Array {
  const u8 = new Uint8Array(8 + quote.length);
  u8[0] = type;
  u8[1] = code;
  u8.set(quote, 8);
  let s = 0;
  for (let i = 0; i < u8.length; i += 2) s += (u8[i] << 8) | (u8[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  const c = ~s & 0xffff;
  u8[2] = c >>> 8;
  u8[3] = c & 255;
  return u8;
}

function fixIpChecksum(u8: Uint8Array): void {
  u8[24] = 0;
  u8[25] = 0;
  let s = 0;
  for (let i = 14; i < 34; i += 2) s += (u8[i] << 8) | u8[i + 1];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  const c = ~s & 0xffff;
  u8[24] = c >>> 8;
  u8[25] = c & 255;
}
