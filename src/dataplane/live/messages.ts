// Messages between the daemon's control thread and its dataplane workers. Tables travel as their
// SharedArrayBuffers (shared, not copied); ports as plain specs plus the fd this worker uses for each.
import type { SharedTables } from '../tables/set.js';
import type { DataplaneParams } from '../graph/env.js';
import type { PortSpec } from '../graph/ports.js';
import type { PolicyShared } from '../features/policy/nodes.js';
import type { NatTableShared } from '../tables/nat/table.js';
import type { MessagePort } from 'node:worker_threads';

export type { SharedTables };

export interface PortsUpdate {
  type: 'ports';
  /** acknowledged by an 'applied' event once the worker no longer uses fds absent from this update */
  seq: number;
  specs: (PortSpec | null)[];
  /** per port slot: the fd this worker reads and writes (-1: none) */
  fds: number[];
}

/**
 * New DataplaneParams (tunnel peers, pools, owned addresses, VXLAN port / VNI, ...) and, when the first
 * natOutgoing pool appeared after the worker started, the NAT table to attach. The loop applies it
 * between two batches (graph nodes copy the new values; nothing queued or held is dropped) and
 * acknowledges it with an 'applied' event, like a ports update.
 */
export interface ParamsUpdate {
  type: 'params';
  seq: number;
  params: DataplaneParams;
  /** the shared NAT table (null: none yet); attached once, when the worker has none */
  nat: NatTableShared | null;
}

export interface WorkerInit {
  id: number;
  control: MessagePort;
  /** eventfd the control thread writes after posting a message (wakes epoll) */
  wakeFd: number;
  tables: SharedTables;
  /** network policy: the control thread's PolicyProgrammer.shared() (absent: no ip4-policy node) */
  policy?: PolicyShared;
  params: DataplaneParams;
  ports: PortsUpdate;
  /** counters to continue (a restarted worker keeps its predecessor's) */
  counters?: SharedArrayBuffer;
  portCounters?: SharedArrayBuffer;
  batchSize: number;
  /** milliseconds between timer rounds when idle */
  idleMs: number;
  /** the uplink socket carries a virtio_net_hdr per frame (PACKET_VNET_HDR) */
  uplinkVnetHdr: boolean;
  /**
   * workload TAPs were opened with IFF_VNET_HDR and offloads (TSO super-frames; the default, unless
   * `--no-offload` or the kernel refused): 64 KiB slots, and the uplink segments tunnel super-frames
   */
  tapOffload: boolean;
  /**
   * 'packet' (default): the uplink fd is an AF_PACKET socket carrying Ethernet frames. 'udp': it is a
   * UDP socket on the node IP and VXLAN port carrying VXLAN payloads (see devices/udp.ts).
   */
  uplinkMode?: UplinkMode;
  /** the udp uplink's socket has UDP_GRO (with tapOffload only): UdpDevice splits coalesced reads */
  uplinkUdpGro?: boolean;
  /** obey the test-only `crash` message (the daemon sets it when CALITAP_TEST_HOOKS=1) */
  testHooks?: boolean;
}

export type UplinkMode = 'packet' | 'udp';

/**
 * Start reading a port's device again after it failed (`device-error`); `name` guards against a
 * port slot that changed hands in between.
 */
export interface RearmMessage {
  type: 'rearm';
  port: number;
  name: string;
}

/**
 * `crash`: a test hook that makes the worker throw, to prove restarts work; obeyed only by workers
 * started with `testHooks` (CALITAP_TEST_HOOKS=1), ignored otherwise.
 */
export type ControlMessage = PortsUpdate | ParamsUpdate | RearmMessage | { type: 'stop' } | { type: 'crash' };

/**
 * A port's device failed (a read or write error that is not about one frame): the worker stopped
 * reading it (its frames are counted as `port-output: error`) until the control thread re-arms it
 * (`rearm`) or removes the port.
 */
export interface DeviceErrorEvent {
  type: 'device-error';
  id: number;
  port: number;
  name: string;
  op: 'read' | 'write';
  errno: number;
  /** errno name, e.g. EBADFD */
  code: string;
}

export type WorkerEvent =
  | {
      type: 'ready';
      id: number;
      counters: SharedArrayBuffer;
      names: { node: string; reason: string }[];
      portCounters: SharedArrayBuffer;
    }
  | { type: 'applied'; id: number; seq: number }
  | DeviceErrorEvent
  | { type: 'error'; id: number; message: string };
