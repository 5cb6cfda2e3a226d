// Shared pieces of the policy tests: a small cluster (node-a with three workloads of a web/api/db
// app in namespace `shop`, node-b with one remote workload), frame builders for TCP (the UDP and
// ICMP ones come from test/dataplane/frames.ts) and a graph harness per policy document set.
import { emitIp4Header, IPPROTO_TCP } from '../../src/dataplane/wire/ipv4.js';
import { tcpSetChecksum } from '../../src/dataplane/wire/tcp.js';
import { emitEthernet, ETHERTYPE_IPV4 } from '../../src/dataplane/wire/ethernet.js';
import { EE, ip, mac } from '../dataplane/frames.js';

export const UPLINK_MAC = '52:54:00:00:00:0a';
export const GW_MAC = '52:54:00:00:00:fe';
export const NODE_B_MAC = '52:54:00:00:00:0b';

export const WEB = { port: 'caliweb', ip: '10.65.0.2', mac: '0a:58:0a:41:00:02', name: 'web' };
export const API = { port: 'caliapi', ip: '10.65.0.3', mac: '0a:58:0a:41:00:03', name: 'api' };
export const DB = { port: 'calidb', ip: '10.65.0.4', mac: '0a:58:0a:41:00:04', name: 'db' };
/** on node-b: reached directly (same segment, no encapsulation) */
export const REMOTE = { ip: '10.65.0.66', name: 'batch' };
/** outside every pool (through the gateway) */
export const OUTSIDE = '192.0.2.10';

/** The cluster without policy resources: pool, nodes, blocks, workloads, uplink. */
export function baseYaml(): string {
  const wep = (w: { port: string; ip: string; mac: string; name: string }, role: string) => `
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: { name: ${w.name}, namespace: shop, labels: { app: shop, role: ${role} } }
spec: { node: node-a, interfaceName: ${w.port}, ipNetworks: [${w.ip}/32], mac: '${w.mac}',
        ports: [{ name: http, protocol: TCP, port: 8080 }, { name: dns, protocol: UDP, port: 53 }] }
---`;
  return `
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: { name: pool-a }
spec: { cidr: 10.65.0.0/16, ipipMode: Never, vxlanMode: Never }
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: { name: node-a }
spec: { bgp: { ipv4Address: 10.0.0.1/24 } }
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: { name: node-b }
spec: { bgp: { ipv4Address: 10.0.0.2/24 } }
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: { name: a-0 }
spec: { node: node-a, cidr: 10.65.0.0/26 }
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: { name: b-64 }
spec: { node: node-b, cidr: 10.65.0.64/26 }
---${wep(WEB, 'web')}${wep(API, 'api')}${wep(DB, 'db')}
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: { name: ${REMOTE.name}, namespace: jobs, labels: { app: batch } }
spec: { node: node-b, interfaceName: calibatch, ipNetworks: [${REMOTE.ip}/32], mac: '0a:58:0a:41:00:42' }
---
apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { team: shop, env: prod } }
---
apiVersion: v1
kind: Namespace
metadata: { name: jobs, labels: { team: data, env: prod } }
---
apiVersion: calitap/v1
kind: Uplink
metadata: { name: node-a }
spec:
  interfaceName: uplink
  mac: '${UPLINK_MAC}'
  gateway: 10.0.0.254
  neighbors:
    - { ip: 10.0.0.254, mac: '${GW_MAC}' }
    - { ip: 10.0.0.2, mac: '${NODE_B_MAC}' }
`;
}

export const TCP_FLAGS = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;

export interface TcpOpts {
  ethSrc: string;
  ethDst?: string;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  flags: number;
  seq?: number;
  ack?: number;
  payload?: Uint8Array;
  id?: number;
}

/** Ethernet + IPv4 + TCP (20-byte header) with valid checksums. */
export function tcp(o: TcpOpts): Uint8Array {
  const payload = o.payload ?? new Uint8Array(0);
  const total = 20 + 20 + payload.length;
  const u8 = new Uint8Array(14 + total);
  emitEthernet(u8, 0, mac(o.ethDst ?? EE), mac(o.ethSrc), ETHERTYPE_IPV4);
  emitIp4Header(u8, 14, ip(o.src), ip(o.dst), IPPROTO_TCP, total, 64, o.id ?? 1, 0, 0);
  const t = 34;
  u8[t] = o.sport >>> 8;
  u8[t + 1] = o.sport & 255;
  u8[t + 2] = o.dport >>> 8;
  u8[t + 3] = o.dport & 255;
  const seq = o.seq ?? 1000;
  const ack = o.ack ?? 0;
  for (let k = 0; k < 4; k++) {
    u8[t + 4 + k] = (seq >>> (24 - 8 * k)) & 255;
    u8[t + 8 + k] = (ack >>> (24 - 8 * k)) & 255;
  }
  u8[t + 12] = 5 << 4;
  u8[t + 13] = o.flags;
  u8[t + 14] = 0xff;
  u8[t + 15] = 0xff;
  u8.set(payload, t + 20);
  tcpSetChecksum(u8, 14);
  return u8;
}

/** The replay scenario's policy: two tiers, Pass, Log, a named port, an explicit namespace profile. */
export const POLICY_YAML = `
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: { name: security }
spec: { order: 100 }
---
# security tier: data-team namespaces never reach the database; everything else goes on (Pass)
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: { name: data-not-to-db }
spec:
  tier: security
  order: 1
  selector: role == 'db'
  types: [Ingress]
  ingress:
    - action: Deny
      source: { namespaceSelector: team == 'data' }
    - action: Pass
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
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: { name: api-from-web, namespace: shop }
spec:
  selector: role == 'api'
  order: 10
  ingress:
    - action: Log
      protocol: TCP
    - action: Allow
      protocol: TCP
      source: { selector: role == 'web' }
      destination: { ports: [http] }
---
# the namespace's profile: web takes TCP 80 from anywhere, nothing else; anything may leave
apiVersion: projectcalico.org/v3
kind: Profile
metadata: { name: kns.shop }
spec:
  ingress:
    - action: Allow
      protocol: TCP
      destination: { ports: [80] }
    - action: Deny
  egress:
    - action: Allow
`;
