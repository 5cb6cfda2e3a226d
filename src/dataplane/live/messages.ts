// Messages between the daemon's control thread and its dataplane workers. Tables travel as their
// SharedArrayBuffers (shared, not copied); ports as plain specs plus the fd this worker uses for each.
import type { SharedTables } from '../tables/set.js';
import type { DataplaneParams } from '../graph/env.js';
import type { PortSpec } from '../graph/ports.js';
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

export interface WorkerInit {
  id: number;
  control: MessagePort;
  /** eventfd the control thread writes after posting a message (wakes epoll) */
  wakeFd: number;
  tables: SharedTables;
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
  /** workload TAPs were opened with IFF_VNET_HDR and offloads (TSO super-frames) */
  tapOffload: boolean;
  /**
   * 'packet' (default): the uplink fd is an AF_PACKET socket carrying Ethernet frames. 'udp': it is a
   * UDP socket on the node IP and VXLAN port carrying VXLAN payloads (see udp-uplink.ts).
   */
  uplinkMode?: UplinkMode;
}

export type UplinkMode = 'packet' | 'udp';

/** `crash`: a test hook (CALITAP_TEST_HOOKS=1) that makes the worker throw, to prove restarts work */
export type ControlMessage = PortsUpdate | { type: 'stop' } | { type: 'crash' };

export type WorkerEvent =
  | {
      type: 'ready';
      id: number;
      counters: SharedArrayBuffer;
      names: { node: string; reason: string }[];
      portCounters: SharedArrayBuffer;
    }
  | { type: 'applied'; id: number; seq: number }
  | { type: 'error'; id: number; message: string };
