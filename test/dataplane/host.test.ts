// The host port (KIND_HOST: the TAP facing the host's kernel) in the in-memory graph: host → pod
// routed and never policed (but recorded, so the pod's replies pass), pod → any host address to the
// TAP's kernel-side MAC, defaultEndpointToHostAction Drop / Accept / Return after the pod's egress
// policy (with and without policy resources), ARP for 169.254.1.1, what the host may not send
// (forwarded sources, its own addresses), the uplink never reaching the host port, and PMTU errors
// back to the host. Every case runs on the fast path and on the general nodes.
import { describe, expect, it } from 'vitest';
import { Harness, programmer } from './harness.js';
import { arp, EE, ip, ipStr, macStr, ping, udp } from './frames.js';
import { loadConfigText } from '../../src/control/config/load.js';
import { PolicyProgrammer } from '../../src/control/policy/programmer.js';
import { CALICO_GATEWAY_IP } from '../../src/common/addr.js';
import { API, baseYaml, DB, GW_MAC, OUTSIDE, tcp, TCP_FLAGS, UPLINK_MAC, WEB } from '../policy/helpers.js';

const HOST = 'calitap-host0';
const TAP_MAC = '52:54:00:aa:bb:cc';
const NODE_IP = '10.0.0.1';
/** another address of the host's namespace */
const EXTRA = '192.168.7.1';

const DENY_INGRESS = `
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: { name: deny-all-ingress }
spec: { selector: all(), types: [Ingress] }
`;

const DENY_WEB_EGRESS = `
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: { name: web-egress }
spec:
  selector: role == 'web'
  types: [Egress]
  egress: [{ action: Allow, protocol: UDP }]
`;

const always = new Map<string, PolicyProgrammer>();

/**
 * A graph for baseYaml + `policy` with the host port attached (the programmer is cached per YAML, so
 * its flows, counters and endpoint-to-host action are reset here). `policy` empty: the policy tables
 * exist but are off, as in the daemon.
 */
function harness(policy: string, fast: boolean, toHostDrop = false): Harness {
  const yaml = `${baseYaml()}${policy}\n# host port\n`;
  const prog = programmer(yaml);
  if (prog.env.ports.index(HOST) === undefined)
    prog.attachHost({ name: HOST, mac: TAP_MAC, mtu: 9000, addrs: [ip(NODE_IP), ip(EXTRA)] });
  let pp = prog.policy ?? always.get(yaml);
  if (pp === undefined) {
    pp = PolicyProgrammer.attach(prog.cfg, 'node-a', prog.env, { always: true })!;
    always.set(yaml, pp);
  }
  pp.program(loadConfigText(yaml, 't.yaml'));
  pp.flows.clear();
  pp.tables.counters.fill(0);
  pp.tables.endpointToHostDrop = toHostDrop;
  return new Harness({ yaml, fast });
}

const fromHost = (dst: string, o: { src?: string; sport?: number; dport?: number; flags?: number } = {}) =>
  tcp({
    ethSrc: TAP_MAC,
    src: o.src ?? NODE_IP,
    dst,
    sport: o.sport ?? 50000,
    dport: o.dport ?? 80,
    flags: o.flags ?? TCP_FLAGS.SYN,
  });

const fromPod = (w: typeof WEB, dst: string, o: { sport?: number; dport?: number; flags?: number } = {}) =>
  tcp({
    ethSrc: w.mac,
    src: w.ip,
    dst,
    sport: o.sport ?? 40000,
    dport: o.dport ?? 22,
    flags: o.flags ?? TCP_FLAGS.SYN,
  });

const ports = (out: { port: string }[]) => out.map((t) => t.port);
const SYNACK = TCP_FLAGS.SYN | TCP_FLAGS.ACK;

for (const fast of [true, false]) {
  describe(`the host port (${fast ? 'fast path' : 'general nodes'})`, () => {
    it('routes host → pod to the workload, rewritten like any local delivery', () => {
      const h = harness('', fast);
      const out = h.one(HOST, fromHost(WEB.ip));
      expect(ports(out)).toEqual([WEB.port]);
      const f = out[0].bytes;
      expect(macStr(f, 0)).toBe(WEB.mac);
      expect(macStr(f, 6)).toBe(EE);
      expect(f[14 + 8]).toBe(63); // TTL
    });

    it('routes pod → node IP, owned and other host addresses to the TAP’s kernel-side MAC', () => {
      const h = harness('', fast);
      for (const dst of [NODE_IP, EXTRA]) {
        const out = h.one(WEB.port, ping({ ethSrc: WEB.mac, src: WEB.ip, dst }));
        expect(ports(out)).toEqual([HOST]);
        expect(macStr(out[0].bytes, 0)).toBe(TAP_MAC);
        expect(macStr(out[0].bytes, 6)).toBe(EE);
      }
      expect(h.c('ip4-input: to-host-unsupported')).toBe(0);
    });

    it('drops pod → node IP as to-host-unsupported without a host port', () => {
      const h = new Harness({ yaml: baseYaml(), fast });
      expect(h.one(WEB.port, ping({ ethSrc: WEB.mac, src: WEB.ip, dst: NODE_IP }))).toHaveLength(0);
      expect(h.c('ip4-input: to-host-unsupported')).toBe(1);
    });

    it('answers the kernel’s ARP for 169.254.1.1 with ee:ee:ee:ee:ee:ee, and nothing else', () => {
      const h = harness('', fast);
      const out = h.one(HOST, arp({ sha: TAP_MAC, spa: NODE_IP, tpa: ipStr(CALICO_GATEWAY_IP) }));
      expect(ports(out)).toEqual([HOST]);
      expect(macStr(out[0].bytes, 0)).toBe(TAP_MAC);
      expect(macStr(out[0].bytes, 14 + 8)).toBe(EE); // sender hardware address
      expect(h.one(HOST, arp({ sha: TAP_MAC, spa: NODE_IP, tpa: WEB.ip }))).toHaveLength(0);
      expect(h.c('arp-reply: not-ours')).toBe(1);
    });

    it('drops what the host kernel forwarded or sent to itself', () => {
      const h = harness('', fast);
      expect(h.one(HOST, fromHost(WEB.ip, { src: OUTSIDE }))).toHaveLength(0);
      expect(h.one(HOST, fromHost(EXTRA))).toHaveLength(0);
      expect(h.one(HOST, fromHost(NODE_IP))).toHaveLength(0);
      expect(h.c('ip4-input: host-forwarded')).toBe(2);
      // the host's other address is an allowed source
      expect(ports(h.one(HOST, fromHost(API.ip, { src: EXTRA })))).toEqual([API.port]);
    });

    it('never hands uplink traffic to the host port; node IP traffic from the uplink is as before', () => {
      const h = harness('', fast);
      const toExtra = udp({ ethSrc: GW_MAC, ethDst: UPLINK_MAC, src: OUTSIDE, dst: EXTRA });
      expect(h.one('uplink', toExtra)).toHaveLength(0);
      expect(h.c('ip4-lookup: host-only-from-workloads')).toBe(1);
      const toNode = udp({ ethSrc: GW_MAC, ethDst: UPLINK_MAC, src: OUTSIDE, dst: NODE_IP });
      expect(h.one('uplink', toNode)).toHaveLength(0);
      expect(h.c('ip4-input: not-ours')).toBe(1);
      // and the host cannot reach beyond the local workloads through calitap
      expect(h.one(HOST, fromHost(OUTSIDE))).toHaveLength(0);
      expect(h.c('ip4-lookup: not-for-local-workload')).toBe(1);
    });

    it('sends ICMP fragmentation-needed back to the host, sourced from the destination', () => {
      const h = harness('', fast);
      const big = udp({
        ethSrc: TAP_MAC,
        src: NODE_IP,
        dst: WEB.ip,
        df: true,
        payload: new Uint8Array(1600),
      });
      const out = h.one(HOST, big);
      expect(ports(out)).toEqual([HOST]);
      const f = out[0].bytes;
      expect(f[14 + 9]).toBe(1); // ICMP
      expect(ipStr((f[26] << 24) | (f[27] << 16) | (f[28] << 8) | f[29])).toBe(WEB.ip);
      expect(ipStr((f[30] << 24) | (f[31] << 16) | (f[32] << 8) | f[33])).toBe(NODE_IP);
      expect([f[34], f[35]]).toEqual([3, 4]); // destination unreachable, fragmentation needed
      expect((f[40] << 8) | f[41]).toBe(1500);
      expect(macStr(f, 0)).toBe(TAP_MAC);
    });

    it('never polices host → pod, and records the flow so the pod’s replies pass', () => {
      const h = harness(DENY_INGRESS, fast);
      expect(h.one(API.port, fromPod(API, WEB.ip, { dport: 80 }))).toHaveLength(0); // deny-all ingress
      expect(h.c('ip4-policy: denied')).toBe(1);
      expect(ports(h.one(HOST, fromHost(WEB.ip)))).toEqual([WEB.port]);
      const reply = fromPod(WEB, NODE_IP, { sport: 80, dport: 50000, flags: SYNACK });
      expect(ports(h.one(WEB.port, reply))).toEqual([HOST]);
      expect(h.c('ip4-policy: invalid')).toBe(0);
      // a reply to nothing the host opened is INVALID
      const stray = fromPod(WEB, NODE_IP, { sport: 81, dport: 50000, flags: SYNACK });
      expect(h.one(WEB.port, stray)).toHaveLength(0);
      expect(h.c('ip4-policy: invalid')).toBe(1);
    });

    for (const [label, policy] of [
      ['with policy', DENY_INGRESS],
      ['without policy', ''],
    ] as const) {
      it(`applies defaultEndpointToHostAction to new pod → host flows (${label})`, () => {
        // Accept (and Return, which is Accept here): allowed, and the host's reply passes
        const a = harness(policy, fast, false);
        expect(ports(a.one(WEB.port, fromPod(WEB, NODE_IP)))).toEqual([HOST]);
        const back = fromHost(WEB.ip, { sport: 22, dport: 40000, flags: SYNACK });
        expect(ports(a.one(HOST, back))).toEqual([WEB.port]);
        // Drop: new flows to any host address are dropped and counted; the host's own flows live on
        const d = harness(policy, fast, true);
        expect(d.one(WEB.port, fromPod(WEB, NODE_IP))).toHaveLength(0);
        expect(d.one(WEB.port, ping({ ethSrc: WEB.mac, src: WEB.ip, dst: EXTRA }))).toHaveLength(0);
        expect(d.c('ip4-policy: endpoint-to-host-drop')).toBe(2);
        expect(ports(d.one(HOST, fromHost(WEB.ip)))).toEqual([WEB.port]);
        const reply = fromPod(WEB, NODE_IP, { sport: 80, dport: 50000, flags: SYNACK });
        expect(ports(d.one(WEB.port, reply))).toEqual([HOST]);
        expect(d.c('ip4-policy: endpoint-to-host-drop')).toBe(2);
        // pod ↔ pod and pod → outside are not the host's business
        expect(ports(d.one(WEB.port, udp({ ethSrc: WEB.mac, src: WEB.ip, dst: OUTSIDE })))).toEqual([
          'uplink',
        ]);
        if (policy === '') expect(ports(d.one(WEB.port, fromPod(WEB, DB.ip)))).toEqual([DB.port]);
      });
    }

    it('runs the pod’s egress policy before the endpoint-to-host action', () => {
      const h = harness(DENY_WEB_EGRESS, fast, false);
      expect(h.one(WEB.port, fromPod(WEB, NODE_IP))).toHaveLength(0);
      expect(h.c('ip4-policy: denied')).toBe(1);
      expect(h.c('ip4-policy: endpoint-to-host-drop')).toBe(0);
      expect(ports(h.one(WEB.port, udp({ ethSrc: WEB.mac, src: WEB.ip, dst: NODE_IP })))).toEqual([HOST]);
    });
  });
}
