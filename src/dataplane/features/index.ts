// The optional graph layers (encapsulation, NAT) a dataplane is built with. Kept in one place so
// replay and the live workers build exactly the same graph.
import type { GraphExtension } from '../graph/build.js';
import { Ipip4Encap, Ipip4Input, Vxlan4Encap, Vxlan4Input } from './encap/nodes.js';
import { PoolSet, Snat4In2Out, Snat4Out2In } from './nat/nodes.js';

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

/** natOutgoing: snat4-in2out behind ip4-lookup, snat4-out2in for replies to our SNAT addresses. */
export const natExtension: GraphExtension = (g, env) => {
  if (env.nat === null) return;
  const graph = g.graph;
  const out2in = graph.add(new Snat4Out2In(env.nat));
  const in2out = graph.add(new Snat4In2Out(env, env.nat, new PoolSet(env.params.pools)));
  out2in.lookup = g.lookup;
  in2out.rewrite = g.rewrite;
  g.ip4Input.natIn = out2in;
  g.lookup.snatOut = in2out;
  g.rewrite.snat = in2out;
  g.icmpError.nat = env.nat;
};

/** The layers every dataplane is built with (replay and live workers alike). */
export const DATAPLANE_EXTENSIONS: readonly GraphExtension[] = [encapExtension, natExtension];
