// Builds one graph: the nodes in dispatch order, wired to each other, over the given tables and port
// sinks. Called once per worker (live) or once per replay run; the result is owned by that thread.
import { Graph } from './graph.js';
import type { PortCounters } from './counters.js';
import type { DataplaneEnv, PortSink } from './env.js';
import { EthernetInput, ArpReply } from './nodes/l2.js';
import { Ip4Input, Ip4Lookup, Ip4Rewrite, Ip4SpoofCheck } from './nodes/ip4.js';
import { Ip4Arp } from './nodes/arp-resolve.js';
import { Ip4IcmpError } from './nodes/icmp-error.js';
import { InterfaceOutput } from './nodes/output.js';

export interface BuiltGraph {
  graph: Graph;
  ethernetInput: EthernetInput;
  arpReply: ArpReply;
  ip4Input: Ip4Input;
  spoofCheck: Ip4SpoofCheck;
  lookup: Ip4Lookup;
  rewrite: Ip4Rewrite;
  arp: Ip4Arp;
  icmpError: Ip4IcmpError;
  output: InterfaceOutput;
  /** smallest path MTU when the graph was built (sizes the receive budget of a round) */
  minMtu: number;
  /** wiring that needs interface-output (added last): run once the graph is complete */
  afterSeal: (() => void)[];
}

/** Hook for layers that add nodes (encapsulation, NAT): called after the core nodes exist. */
export type GraphExtension = (g: BuiltGraph, env: DataplaneEnv) => void;

export function buildGraph(
  env: DataplaneEnv,
  sinks: (PortSink | null)[],
  capacity: number,
  extensions: GraphExtension[] = [],
  shared?: { counters?: SharedArrayBuffer; portCounters?: PortCounters },
): BuiltGraph {
  const graph = new Graph(capacity, env.ports.count, shared?.portCounters);
  // dispatch order: input side first, output last (packets flow mostly forward in one pass)
  const ethernetInput = graph.add(new EthernetInput(env));
  const arpReply = graph.add(new ArpReply(env));
  const ip4Input = graph.add(new Ip4Input(env));
  const spoofCheck = graph.add(new Ip4SpoofCheck(env));
  const lookup = graph.add(new Ip4Lookup(env));
  const rewrite = graph.add(new Ip4Rewrite(env));
  const arp = graph.add(new Ip4Arp(env));
  const icmpError = graph.add(new Ip4IcmpError(env, capacity));
  const built: BuiltGraph = {
    graph,
    ethernetInput,
    arpReply,
    ip4Input,
    spoofCheck,
    lookup,
    rewrite,
    arp,
    icmpError,
    output: null as unknown as InterfaceOutput,
    afterSeal: [],
    minMtu: Math.min(env.adj.minMtu() || 65535, ...Array.from(env.ports.mtu).filter((m) => m > 0)),
  };
  for (const ext of extensions) ext(built, env);
  const output = graph.add(new InterfaceOutput(sinks, graph.portCounters, env.ports.names));
  built.output = output;

  ethernetInput.ip4 = ip4Input;
  ethernetInput.arp = arpReply;
  arpReply.output = output;
  arpReply.onResolved = (b, nb, cause) => arp.release(b, nb, cause);
  ip4Input.spoof = spoofCheck;
  ip4Input.lookup = lookup;
  spoofCheck.lookup = lookup;
  lookup.rewrite = rewrite;
  rewrite.output = output;
  rewrite.arp = arp;
  rewrite.icmp = icmpError;
  arp.rewrite = rewrite;
  arp.output = output;
  icmpError.lookup = lookup;
  for (const f of built.afterSeal) f();
  graph.seal(shared?.counters);
  return built;
}
