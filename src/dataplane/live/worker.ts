// A dataplane worker thread: runs one WorkerLoop (loop.ts) over this worker's devices — one queue of
// every workload TAP (TapDevice) and one uplink socket (PacketSocketDevice, or UdpDevice with
// `--uplink udp`), all opened by the control thread — blocking in epoll. Frames are read straight into
// the worker's SharedArrayBuffer arena and written back on the queue they were read from (every
// worker has its own fd per port). The control thread wakes it through an eventfd and hands it
// messages on a MessagePort read synchronously (receiveMessageOnPort), so the loop never yields to
// the event loop. All tables are the shared ones; counters are this worker's own (shared with the
// control thread for reading).
import { workerData, parentPort, receiveMessageOnPort } from 'node:worker_threads';
import { Batch, GSO_SLOT_SIZE, SLOT_SIZE } from '../graph/packet.js';
import { PortTable, PORT_UPLINK } from '../graph/ports.js';
import type { DataplaneEnv } from '../graph/env.js';
import { TableSet } from '../tables/set.js';
import { attachPolicy } from '../features/policy/nodes.js';
import * as io from '../devices/native.js';
import type { Device } from '../devices/device.js';
import { TapDevice } from '../devices/tap.js';
import { PacketSocketDevice } from '../devices/packet-socket.js';
import { GroInput } from '../devices/gro-input.js';
import { TUNNEL_SCRATCH_BYTES } from '../devices/tunnel-seg.js';
import { UdpDevice, UdpUplinkCounters } from '../devices/udp.js';
import { WorkerLoop, type ControlChannel, type DeviceFactory, type Poller } from './loop.js';
import type { ControlMessage, WorkerEvent, WorkerInit } from './messages.js';

function post(e: WorkerEvent): void {
  parentPort?.postMessage(e);
}

/** Waits in epoll for the devices' fds and the control thread's wake eventfd (level-triggered). */
class EpollPoller implements Poller {
  private readonly ep = io.epollCreate();
  private readonly fds = new Int32Array(64);
  private readonly byFd = new Map<number, Device>();

  constructor(private readonly wakeFd: number) {
    io.adoptFd(wakeFd);
    io.epollAdd(this.ep, wakeFd);
  }

  add(dev: Device): void {
    if (dev.fd < 0 || this.byFd.get(dev.fd) === dev) return;
    const other = this.byFd.get(dev.fd);
    if (other !== undefined) this.remove(other);
    io.epollAdd(this.ep, dev.fd);
    this.byFd.set(dev.fd, dev);
  }

  remove(dev: Device): void {
    if (this.byFd.get(dev.fd) !== dev) return;
    this.byFd.delete(dev.fd);
    try {
      io.epollDel(this.ep, dev.fd);
    } catch {
      // the fd is gone already (closing an fd removes it from every epoll set)
    }
  }

  wait(timeoutMs: number, ready: (Device | null)[]): number {
    // a zero timeout is the busy poll (WorkerLoop.nextWait): yield the CPU between two empty polls
    const n = io.epollWait(this.ep, this.fds, timeoutMs, timeoutMs === 0);
    let m = 0;
    for (let k = 0; k < n; k++) {
      const fd = this.fds[k];
      if (fd === this.wakeFd) {
        io.eventfdRead(this.wakeFd);
        ready[m++] = null;
        continue;
      }
      const dev = this.byFd.get(fd);
      if (dev !== undefined) ready[m++] = dev;
    }
    return m;
  }

  close(): void {
    io.close(this.ep);
  }
}

/**
 * CALITAP_BUSY_POLL_US (experimental, default 0: off): microseconds a worker keeps polling after a
 * round that read frames before it sleeps in epoll again (WorkerLoop busyPollMs).
 */
function busyPollMs(): number {
  const us = Number(process.env.CALITAP_BUSY_POLL_US ?? 0);
  return Number.isFinite(us) && us > 0 ? Math.min(us, 1_000_000) / 1000 : 0;
}

/**
 * The worker's TAP queues read and write through one io_uring of this worker (one io_uring_enter per
 * batch instead of a system call per frame: on a guest where a syscall costs ~3 µs, small packets go
 * 2-3x faster; docs/live.md). On by default; CALITAP_URING=0 turns it off. A kernel without io_uring
 * (or with it disabled) falls back to read()/write(), and so does a TAP whose kernel refuses
 * RWF_NOWAIT (FdDevice).
 */
function workerRing(): io.Ring | null {
  if (process.env.CALITAP_URING === '0') return null;
  try {
    return io.uringCreate();
  } catch {
    return null; // io_uring_setup refused (ENOSYS, EPERM: kernel.io_uring_disabled): plain syscalls
  }
}

/**
 * Input GRO on the packet uplink (on by default with offloads; CALITAP_INPUT_GRO=0 turns it off): the IPIP- or VXLAN-carried
 * TCP segments of one flow in one read are merged into a super-frame before the graph
 * (devices/gro-input.ts), so the graph decapsulates and routes one frame per run instead of one per
 * segment. Only with offloads (64 KiB slots).
 */
function inputGro(capacity: number, env: DataplaneEnv): GroInput | null {
  if (process.env.CALITAP_INPUT_GRO === '0') return null;
  return new GroInput(
    capacity,
    (u8, ipOffs, lens, count, results) => void io.l4Csum4(u8, ipOffs, lens, count, results),
    (u8, dsts, srcs, lens, n) => io.moveRanges(u8, dsts, srcs, lens, n),
    () => env.params.nodeIp,
    () => env.params.vxlanPort,
  );
}

function main(init: WorkerInit): void {
  // ---- tables: attach every shared table and register as a reader in this worker's slot (a restart
  // reuses it); one quiescent point per round (afterRound), when no table index is held ----------
  const tables = TableSet.attach(init.tables, init.id);
  const env: DataplaneEnv = {
    ports: new PortTable(init.ports.specs),
    fib: tables.fib,
    adj: tables.adj,
    nbr: tables.nbr,
    nat: tables.nat,
    params: init.params,
  };
  // policy: attached before the graph is built (the graph gets ip4-policy only when env.policy is set)
  if (init.policy !== undefined) env.policy = attachPolicy(init.policy);
  const afterRound = (): void => tables.quiescent();
  // ---- end of tables ----------------------------------------------------------------------------

  // With offloads the uplink (packet or udp) segments tunnel super-frames itself, into scratch after
  // the batch's slots; then no TAP frame needs slots reserved for the graph's segmentation
  const slot = init.tapOffload ? GSO_SLOT_SIZE : SLOT_SIZE;
  const udpCounters = init.uplinkMode === 'udp' ? new UdpUplinkCounters() : null;
  const tunnelSeg = init.tapOffload;
  const slots = init.batchSize * slot;
  const arena = new SharedArrayBuffer(slots + (tunnelSeg ? TUNNEL_SCRATCH_BYTES : 0));
  // the control thread's child processes (`ip`, at workload add/del) must not make this worker take
  // copy-on-write faults on the arena it writes every round (docs/live.md "Where the CPU goes")
  try {
    io.arenaDontFork(new Uint8Array(arena));
  } catch {
    // an advice only: without it a fork costs the worker some faults, nothing breaks
  }
  const batch = new Batch(init.batchSize, arena, 0, slot);
  const scratch = tunnelSeg ? { start: slots, end: slots + TUNNEL_SCRATCH_BYTES } : undefined;
  const ring = workerRing();
  const devices: DeviceFactory = (p, spec, fd, ctx, b) => {
    // super-frames need the graph's segmentation (and slots reserved for it) only without tunnelSeg
    if (p !== PORT_UPLINK) return new TapDevice(spec.name, fd, b, ctx, init.tapOffload, !tunnelSeg, ring);
    if (udpCounters !== null) {
      const { nodeIp, vxlanPort } = init.params;
      // the outer Ethernet header goes to the uplink's MAC (port 0's)
      const mac = (): Uint8Array => env.ports.ourMac;
      // the daemon opened the socket with UDP_GRO (offloads on: 64 KiB slots): coalesced reads
      const gro = init.tapOffload && init.uplinkUdpGro === true;
      return new UdpDevice(spec.name, fd, b, ctx, udpCounters, nodeIp, vxlanPort, mac, scratch, gro);
    }
    return new PacketSocketDevice(spec.name, fd, b, ctx, {
      vnet: init.uplinkVnetHdr,
      // with big slots the uplink takes super-frames too (veth peers, NICs doing GRO): they can only
      // go to local workloads, whose TAPs take them whole
      gsoIn: init.tapOffload,
      scratch,
      inputGro: init.tapOffload ? inputGro(b.capacity, env) : null,
    });
  };
  const control: ControlChannel = {
    receive: () => receiveMessageOnPort(init.control)?.message as ControlMessage | undefined,
    post,
  };
  const poller = new EpollPoller(init.wakeFd);
  const loop = new WorkerLoop({
    id: init.id,
    env,
    batch,
    ports: init.ports,
    devices,
    poller,
    control,
    now: () => performance.timeOrigin + performance.now(),
    idleMs: init.idleMs,
    busyPollMs: busyPollMs(),
    counters: init.counters,
    portCounters: init.portCounters,
    extraNodes: udpCounters !== null ? [udpCounters] : [],
    testHooks: init.testHooks === true,
    afterRound,
    attachNat: (shared) => tables.attachNat(shared),
  });
  try {
    loop.run();
  } finally {
    tables.detach();
    poller.close();
    if (ring !== null) io.uringClose(ring);
  }
}

const init = workerData as WorkerInit;
try {
  main(init);
} catch (e) {
  post({ type: 'error', id: init.id, message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  throw e;
}
