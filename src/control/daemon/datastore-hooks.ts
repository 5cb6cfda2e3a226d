// What the datastore mode (live-config.ts) plugs into the daemon (daemon.ts): the cluster as listed
// from the datastore, the BGP mesh from the start, the status line, and the workload hooks that take
// addresses from the CAS IPAM and write WorkloadEndpoints. Control thread.
import type { ClusterConfig } from '../config/types.js';
import type { Attached, WorkloadRecord } from './workloads.js';

export interface DaemonDatastore {
  cluster: ClusterConfig;
  /** run BGP for the node-to-node mesh even before any peer is known */
  bgpMesh: boolean;
  status(): unknown;
  /** allocates the address (IPAM) before the TAP is made; returns it */
  beforeAdd(p: Record<string, unknown>): Promise<string>;
  /** the TAP is up: write the WorkloadEndpoint; a failed add calls release */
  afterAdd(record: WorkloadRecord, p: Record<string, unknown>): Promise<void>;
  release(name: string, ip?: string): Promise<void>;
}

/**
 * `workload add` with or without a datastore: the address from the datastore's IPAM first (released
 * again when attaching fails), the WorkloadEndpoint written once the TAP is up.
 */
export async function addWorkload(
  ds: DaemonDatastore | undefined,
  p: Record<string, unknown>,
  attach: (ip: string | undefined) => Attached,
): Promise<Attached> {
  const ip = ds ? await ds.beforeAdd(p) : (p.ip as string | undefined);
  let a: Attached;
  try {
    a = attach(ip);
  } catch (e) {
    await ds?.release(String(p.name), ip);
    throw e;
  }
  await ds?.afterAdd(a.record, p);
  return a;
}
