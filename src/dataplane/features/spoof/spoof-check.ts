// ip4-spoof-check: anti-spoofing on workload ports, a feature on arc ip4-unicast for packets received
// from workloads only (arc key = rx port kind). A workload may only source its own ipNetworks, and may
// not send IPIP or VXLAN (Calico drops both; a workload could otherwise inject into the tunnel mesh).
// Runs in the graph owner's thread; reads the port table (env.ports, swapped on port changes).
import { GraphNode, drop, type NodeDecl } from '../../graph/graph.js';
import type { Batch } from '../../graph/packet.js';
import type { DataplaneEnv } from '../../graph/env.js';
import type { GraphFeature } from '../../graph/build.js';
import { ARC_IP4_UNICAST, unicastKey } from '../../graph/arcs.js';
import { KIND_WORKLOAD } from '../../graph/ports.js';
import { ETH_HLEN } from '../../wire/ethernet.js';
import { IP4_PROTO, IPPROTO_IPIP, IPPROTO_UDP, ip4Hlen, ip4Src } from '../../wire/ipv4.js';

const R_SPOOFED = 0;
const R_IPIP = 1;
const R_VXLAN = 2;

export class Ip4SpoofCheck extends GraphNode {
  readonly decl: NodeDecl = {
    name: 'ip4-spoof-check',
    arc: { name: ARC_IP4_UNICAST, keys: [unicastKey(KIND_WORKLOAD)] },
    reasons: [drop('spoofed-source'), drop('ipip-from-workload'), drop('vxlan-from-workload')],
  };
  private vxlanPort: number;

  constructor(private readonly env: DataplaneEnv) {
    super();
    this.vxlanPort = env.params.vxlanPort;
  }

  override setParams(env: DataplaneEnv): void {
    this.vxlanPort = env.params.vxlanPort;
  }

  /** True when workload packet i may go on; otherwise it is dropped and counted here. */
  override pass(b: Batch, i: number): boolean {
    const u8 = b.u8;
    const ip = b.off[i] + ETH_HLEN;
    if (!this.env.ports.sourceAllowed(b.rxPort[i], ip4Src(u8, ip))) {
      this.drop(b, i, R_SPOOFED);
      return false;
    }
    const proto = u8[ip + IP4_PROTO];
    if (proto === IPPROTO_IPIP) {
      this.drop(b, i, R_IPIP);
      return false;
    }
    if (proto === IPPROTO_UDP) {
      const l4 = ip + ip4Hlen(u8, ip);
      if (l4 + 4 <= b.off[i] + b.len[i] && ((u8[l4 + 2] << 8) | u8[l4 + 3]) === this.vxlanPort) {
        this.drop(b, i, R_VXLAN);
        return false;
      }
    }
    return true;
  }
}

export const spoofFeature: GraphFeature = (env) => [new Ip4SpoofCheck(env)];
