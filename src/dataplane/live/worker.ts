// A dataplane worker thread: owns one queue of every workload TAP and one uplink socket (AF_PACKET,
// or with `--uplink udp` a UDP socket carrying VXLAN payloads: see udp-uplink.ts), reads
// batches straight into its SharedArrayBuffer arena (native readBatch), runs the forwarding graph and
// writes each port's frames back in one call (writeBatch) — on the queue it read from, since every
// worker has its own fd per port. Blocks in epoll; the control thread wakes it through an eventfd
// and hands it messages on a MessagePort read synchronously (receiveMessageOnPort), so the loop never
// yields to the event loop. All tables are the shared ones; counters are this worker's own.
import { workerData, parentPort, receiveMessageOnPort } from 'node:worker_threads';
import { Batch, GSO_SLOT_SIZE, PKT_GSO, SLOT_SIZE, gsoSegments, piecesPerFrame } from '../graph/packet.js';
import { buildGraph, type BuiltGraph } from '../graph/build.js';
import { DATAPLANE_EXTENSIONS } from '../features/index.js';
import { TableSet } from '../tables/set.js';
import { PortTable, MAX_PORTS, PORT_UPLINK } from '../graph/ports.js';
import { GraphNode } from '../graph/graph.js';
import {
  VNET_ERR_GSO,
  VNET_GSO_TCPV4,
  VNET_HDR_LEN,
  VNET_OK,
  vnetClear,
  vnetFinish,
  vnetGsoType,
  vnetTcp4Gso,
  vnetWriteTcp4Gso,
} from '../wire/virtio.js';
import { PortCounters } from '../graph/counters.js';
import type { DataplaneEnv, PortSink } from '../graph/env.js';
import * as io from '../devices/native.js';
import type { ControlMessage, PortsUpdate, WorkerEvent, WorkerInit } from './messages.js';
import { UDP_OUTER_LEN, UdpUplinkCounters, UdpUplinkSink, synthVxlanOuter } from '../devices/udp-uplink.js';

/** Transmits a round's frames for one port with one writeBatch call. */
export class FdSink implements PortSink {
  private readonly offs: Uint32Array;
  private readonly lens: Uint32Array;
  private n = 0;
  /** frames the kernel did not take (queue full, interface gone) */
  dropped = 0;

  constructor(
    readonly fd: number,
    private readonly arena: SharedArrayBuffer,
    capacity: number,
    /** the socket expects a virtio_net_hdr in front of each frame (written into the headroom) */
    private readonly vnet = false,
  ) {
    this.offs = new Uint32Array(capacity);
    this.lens = new Uint32Array(capacity);
  }

  tx(b: Batch, i: number): void {
    if (this.vnet) {
      if ((b.flags[i] & PKT_GSO) !== 0) vnetWriteTcp4Gso(b.u8, b.off[i] - VNET_HDR_LEN, b.off[i], b.gso[i]);
      else vnetClear(b.u8, b.off[i] - VNET_HDR_LEN);
      this.offs[this.n] = b.off[i] - VNET_HDR_LEN;
      this.lens[this.n] = b.len[i] + VNET_HDR_LEN;
    } else {
      this.offs[this.n] = b.off[i];
      this.lens[this.n] = b.len[i];
    }
    this.n++;
  }

  flush(): void {
    const n = this.n;
    if (n === 0) return;
    this.n = 0;
    try {
      const sent = io.writeBatch(this.fd, this.arena, this.offs, this.lens, n);
      this.dropped += n - sent;
    } catch {
      this.dropped += n;
    }
  }
}

const PI_TRUNCATED = 0;
const PI_GSO = 1;
const PI_BAD_CSUM_OFFSET = 2;

/** Counters for what a port read but never reached the graph (no packets flow through it). */
class PortInput extends GraphNode {
  readonly name = 'port-input';
  readonly reasons = ['truncated', 'gso-unsupported', 'bad-checksum-offset'];
  process(): void {}
}

function post(e: WorkerEvent): void {
  parentPort?.postMessage(e);
}

class Worker {
  private readonly init: WorkerInit;
  private readonly env: DataplaneEnv;
  private readonly tables: TableSet;
  private readonly batch: Batch;
  private readonly ep: number;
  private readonly ready = new Int32Array(64);
  private readonly offViews: Uint32Array[] = [];
  private readonly lenViews: Uint32Array[] = [];
  private readonly portCounters: PortCounters;
  private counters: SharedArrayBuffer | undefined;
  private g!: BuiltGraph;
  private sinks: (FdSink | UdpUplinkSink | null)[] = [];
  /** fd → port slot */
  private readonly portOfFd = new Map<number, number>();
  private fds: number[] = [];
  private stopping = false;
  /** this worker's port-input counters (recreated with the graph) */
  private portInput!: PortInput;
  /** read offsets for a virtio_net_hdr socket: each slot's frame start minus the header */
  private readonly vnetOffViews: Uint32Array[] = [];
  /** udp uplink: read offsets (frame start + outer headers) and the senders' addresses and ports */
  private readonly udp: boolean;
  private readonly udpOffViews: Uint32Array[] = [];
  private readonly srcAddrViews: Uint32Array[] = [];
  private readonly srcPortViews: Uint16Array[] = [];
  private readonly udpCounters: UdpUplinkCounters | null;

  constructor(init: WorkerInit) {
    this.init = init;
    // attach every shared table and register as a reader in this worker's slot (a restart reuses it)
    const t = (this.tables = TableSet.attach(init.tables, init.id));
    this.env = {
      ports: new PortTable(init.ports.specs),
      fib: t.fib,
      adj: t.adj,
      nbr: t.nbr,
      nat: t.nat,
      params: init.params,
    };
    this.batch = new Batch(init.batchSize, undefined, 0, init.tapOffload ? GSO_SLOT_SIZE : SLOT_SIZE);
    const voff = this.batch.off.map((o) => o - VNET_HDR_LEN);
    this.udp = init.uplinkMode === 'udp';
    this.udpCounters = this.udp ? new UdpUplinkCounters() : null;
    const uoff = this.batch.off.map((o) => o + UDP_OUTER_LEN);
    const srcAddrs = new Uint32Array(init.batchSize);
    const srcPorts = new Uint16Array(init.batchSize);
    for (let k = 0; k <= init.batchSize; k++) {
      this.offViews.push(this.batch.off.subarray(k));
      this.lenViews.push(this.batch.len.subarray(k));
      this.vnetOffViews.push(voff.subarray(k));
      if (this.udp) {
        this.udpOffViews.push(uoff.subarray(k));
        this.srcAddrViews.push(srcAddrs.subarray(k));
        this.srcPortViews.push(srcPorts.subarray(k));
      }
    }
    this.portCounters = new PortCounters(MAX_PORTS, init.portCounters);
    this.counters = init.counters;
    this.ep = io.epollCreate();
    io.adoptFd(init.wakeFd);
    io.epollAdd(this.ep, init.wakeFd);
    this.applyPorts(init.ports);
  }

  private applyPorts(u: PortsUpdate): void {
    for (const fd of this.fds) if (fd >= 0 && !u.fds.includes(fd)) io.epollDel(this.ep, fd);
    for (const fd of u.fds) {
      if (fd < 0 || this.fds.includes(fd)) continue;
      io.adoptFd(fd);
      io.epollAdd(this.ep, fd);
    }
    this.fds = u.fds.slice();
    this.portOfFd.clear();
    u.fds.forEach((fd, p) => {
      if (fd >= 0) this.portOfFd.set(fd, p);
    });
    this.env.ports = new PortTable(u.specs);
    const udpCounters = this.udpCounters;
    this.sinks = u.fds.map((fd, p) => {
      if (fd < 0) return null;
      if (p === PORT_UPLINK && udpCounters !== null) {
        const port = this.init.params.vxlanPort;
        return new UdpUplinkSink(fd, this.batch.arena, this.init.batchSize, port, udpCounters);
      }
      const vnet = p === PORT_UPLINK ? this.init.uplinkVnetHdr : this.init.tapOffload;
      return new FdSink(fd, this.batch.arena, this.init.batchSize, vnet);
    });
    const portInput = (this.portInput = new PortInput());
    const extra = [(g: BuiltGraph) => void g.graph.add(portInput)];
    if (udpCounters !== null) extra.push((g) => void g.graph.add(udpCounters));
    this.g = buildGraph(this.env, this.sinks, this.init.batchSize, [...DATAPLANE_EXTENSIONS, ...extra], {
      counters: this.counters,
      portCounters: this.portCounters,
    });
    if (this.counters === undefined) {
      this.counters = this.g.graph.counters.values.buffer as SharedArrayBuffer;
      post({
        type: 'ready',
        id: this.init.id,
        counters: this.counters,
        names: this.g.graph.registry.names,
        portCounters: this.portCounters.rxPackets.buffer as SharedArrayBuffer,
      });
    }
  }

  private drainControl(): void {
    io.eventfdRead(this.init.wakeFd);
    for (;;) {
      const m = receiveMessageOnPort(this.init.control);
      if (m === undefined) return;
      const msg = m.message as ControlMessage;
      if (msg.type === 'stop') this.stopping = true;
      else if (msg.type === 'crash') throw new Error('crash requested through the control API (test hook)');
      else if (msg.type === 'ports') {
        this.applyPorts(msg);
        post({ type: 'applied', id: this.init.id, seq: msg.seq });
      }
    }
  }

  /** Strips the virtio_net_hdr of frames [at, at + n) and completes partial checksums. */
  /**
   * Strips the virtio_net_hdr of frames [at, at + n): completes partial checksums; TCPv4 GSO
   * super-frames are kept whole (segment size in gso[]) when `gso` (a TAP with offloads), else dropped.
   */
  private finishVnet(b: Batch, at: number, n: number, gso: boolean): void {
    const pi = this.portInput;
    const u8 = b.u8;
    for (let i = at; i < at + n; i++) {
      const len = b.len[i] - VNET_HDR_LEN;
      b.gso[i] = 0;
      if (len > b.slotData || len < 0) {
        b.len[i] = b.slotData + 1; // claim() drops and counts it as truncated
        continue;
      }
      const hdr = b.off[i] - VNET_HDR_LEN;
      if (gso && vnetGsoType(u8, hdr) === VNET_GSO_TCPV4) {
        const mss = vnetTcp4Gso(u8, hdr, b.off[i], len);
        if (mss > 0) {
          b.gso[i] = mss;
          b.len[i] = len;
          continue;
        }
      }
      const r = vnetFinish(u8, hdr, b.off[i], len);
      if (r !== VNET_OK) {
        // dropped by claim(), counted here under its own reason rather than as truncated
        pi.c[pi.base + (r === VNET_ERR_GSO ? PI_GSO : PI_BAD_CSUM_OFFSET)]++;
        pi.c[pi.base + PI_TRUNCATED]--;
        b.len[i] = b.slotData + 1;
        continue;
      }
      b.len[i] = len;
    }
  }

  /**
   * udp uplink: datagrams [at, at + n) were read UDP_OUTER_LEN bytes into their slots; writes the outer
   * Ethernet/IPv4/UDP header in front of each (sender → node IP:vxlanPort) so they enter the graph as
   * VXLAN frames. Oversized datagrams are left for claim() to drop.
   */
  private finishUdp(b: Batch, at: number, n: number): void {
    const u8 = b.u8;
    const mac = this.env.ports.ourMac; // the uplink's MAC is port 0's
    const node = this.init.params.nodeIp >>> 0;
    const port = this.init.params.vxlanPort;
    const addrs = this.srcAddrViews[at];
    const ports = this.srcPortViews[at];
    for (let k = 0; k < n; k++) {
      const i = at + k;
      const len = b.len[i];
      if (len > b.slotData - UDP_OUTER_LEN) {
        b.len[i] = b.slotData + 1; // claim() drops and counts it (port-input: truncated)
        continue;
      }
      b.len[i] = synthVxlanOuter(u8, b.off[i], len, mac, 0, addrs[k], ports[k], node, port);
    }
  }

  private flush(): void {
    for (const s of this.sinks) if (s !== null) s.flush();
  }

  run(): void {
    const b = this.batch;
    const wake = this.init.wakeFd;
    let lastTick = 0;
    while (!this.stopping) {
      const n = io.epollWait(this.ep, this.ready, this.init.idleMs);
      const nowMs = performance.timeOrigin + performance.now();
      const now = nowMs / 1000;
      const sec = Math.floor(now);
      const nsec = Math.floor((nowMs - sec * 1000) * 1e6);
      b.reset();
      b.nowSec = sec;
      b.nowNsec = nsec;
      if (nowMs - lastTick >= 50) {
        lastTick = nowMs;
        this.g.graph.tick(b, now);
        this.flush();
        b.reset();
      }
      let reserve = 0;
      for (let k = 0; k < n; k++) {
        const fd = this.ready[k];
        if (fd === wake) {
          this.drainControl();
          continue;
        }
        const p = this.portOfFd.get(fd);
        if (p === undefined) continue;
        const tapGso = this.init.tapOffload && p !== PORT_UPLINK;
        const vnet = tapGso || (p === PORT_UPLINK && this.init.uplinkVnetHdr && !this.udp);
        // with big slots the uplink takes super-frames too (veth peers, NICs doing GRO): they can only
        // go to local workloads, whose TAPs take them whole
        const gsoIn = this.init.tapOffload && vnet;
        const udp = p === PORT_UPLINK && this.udp;
        // slots a frame read now may need later: its fragments at the smallest path MTU, or every
        // segment of a GSO super-frame (software TSO before a tunnel); reserved as frames come in
        const perFrame = tapGso ? 1 + gsoSegments(this.g.minMtu) : piecesPerFrame(this.g.minMtu, 1514) + 1;
        for (;;) {
          const want = Math.floor((b.capacity - b.count - reserve) / perFrame);
          if (want <= 0) break;
          let got = 0;
          const at = b.count;
          try {
            got = udp
              ? io.readBatch(
                  fd,
                  b.arena,
                  this.udpOffViews[at],
                  this.lenViews[at],
                  want,
                  b.slotData - UDP_OUTER_LEN,
                  this.srcAddrViews[at],
                  this.srcPortViews[at],
                )
              : vnet
                ? io.readBatch(
                    fd,
                    b.arena,
                    this.vnetOffViews[at],
                    this.lenViews[at],
                    want,
                    b.slotData + VNET_HDR_LEN,
                  )
                : io.readBatch(fd, b.arena, this.offViews[at], this.lenViews[at], want, b.slotData);
          } catch {
            // the port went away (workload deleted, TAP gone): the control thread will update ports
            io.epollDel(this.ep, fd);
            break;
          }
          if (got === 0) break;
          if (vnet) this.finishVnet(b, at, got, gsoIn);
          else if (udp) this.finishUdp(b, at, got);
          const pi = this.portInput;
          pi.c[pi.base + PI_TRUNCATED] += b.claim(got, p, sec, nsec, gsoIn);
          reserve += (b.count - at) * (perFrame - 1);
        }
      }
      if (b.count > 0) {
        this.g.graph.run(b);
        this.flush();
      }
      this.tables.quiescent(); // no table index is held across rounds
    }
    this.tables.detach();
    io.close(this.ep);
  }
}

const init = workerData as WorkerInit;
try {
  new Worker(init).run();
} catch (e) {
  post({ type: 'error', id: init.id, message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  throw e;
}
