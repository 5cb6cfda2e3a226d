// The worker loop: one dataplane worker's rounds, independent of epoll and threads so that it runs
// on MemDevices in tests (test/devices) exactly as on TAP queues and sockets in a worker thread.
//
// A round: wait for readable devices (the Poller: epoll live, a scan of MemDevices in tests); apply
// control messages first (port changes, re-arms, stop); read every readable device within the
// round's budget (devices/driver.ts); run the graph; flush every device; run the graph's timers when
// TICK_MS has passed (after the frames, so a timer never delays one); then the owner's per-round
// hook (the tables' quiescent point). Latency: a frame read in a round is written in that round.
// Nothing waits for a batch to fill (a round takes what is readable, one frame or many) and nothing
// is held for a timer.
// A port change swaps the port table and the devices of the ports that changed, in place: the graph
// is built once, so what it holds (ip4-arp's parked packets, the ICMP rate limiter, counters) lives
// on and no other port loses a frame. A params change (new tunnel peers, pools, the NAT table when the
// first natOutgoing pool appears) replaces env.params (and env.nat) and lets every graph node copy
// the new values (Graph.setParams), between two batches, likewise without a rebuild. A device that fails is taken out of the poller, counted, and
// reported to the control thread (`device-error`), which re-arms it (`rearm`) or removes the port.
// Who owns the buffers: the loop owns its batch, graph, devices and counters; the tables in env are
// shared (read only, except neighbours learned from ARP). Which thread runs it: one worker thread
// (or a test). No allocation per round or packet.
import { PortTable, MAX_PORTS, type PortSpec } from '../graph/ports.js';
import type { Batch } from '../graph/packet.js';
import type { DataplaneEnv } from '../graph/env.js';
import type { NatTable, NatTableShared } from '../tables/nat/table.js';
import type { GraphNode } from '../graph/graph.js';
import { buildGraph, type BuiltGraph, type GraphFeature } from '../graph/build.js';
import { PortCounters } from '../graph/counters.js';
import { DATAPLANE_FEATURES } from '../features/index.js';
import { DeviceContext, errnoName, type Device, type DeviceOp } from '../devices/device.js';
import { Driver, pathMinMtu } from '../devices/driver.js';
import type { ControlMessage, PortsUpdate, WorkerEvent } from './messages.js';

/** Milliseconds between two runs of the graph's timers (ARP retries, hold expiry, NAT). */
export const TICK_MS = 50;

/** Where a loop waits for readable devices and control messages. */
export interface Poller {
  /** Waits for dev's readiness (devices without an fd: per the poller). Adding twice is a no-op. */
  add(dev: Device): void;
  /** Stops waiting for dev (no-op when it was not added). */
  remove(dev: Device): void;
  /**
   * Waits up to timeoutMs; writes the readable devices to `ready` — null for "the control channel
   * has messages" — and returns how many it wrote.
   */
  wait(timeoutMs: number, ready: (Device | null)[]): number;
}

/** The loop's side of the control thread's channel. */
export interface ControlChannel {
  /** The next pending message, without waiting. */
  receive(): ControlMessage | undefined;
  post(e: WorkerEvent): void;
}

/** Makes the device of port p (spec) over fd (a handle in tests) for this loop's batch. */
export type DeviceFactory = (p: number, spec: PortSpec, fd: number, ctx: DeviceContext, b: Batch) => Device;

export interface LoopOptions {
  id: number;
  /** the dataplane's tables and parameters; the loop replaces env.ports at every port change */
  env: DataplaneEnv;
  batch: Batch;
  ports: PortsUpdate;
  devices: DeviceFactory;
  poller: Poller;
  control: ControlChannel;
  /** wall clock in milliseconds since the epoch */
  now: () => number;
  /** longest wait for a readable device (the timers' resolution when idle) */
  idleMs: number;
  /**
   * Busy polling: for this long (ms) after a round that read frames, wait with timeout 0 instead of
   * sleeping, so that the next frame of a conversation (the reply to what the round sent) finds the
   * worker running rather than waking it (on a VM, waking a halted vCPU costs ~0.1–0.2 ms). 0 (the
   * default) never spins. Costs up to this much CPU per burst of traffic.
   */
  busyPollMs?: number;
  /** counters to continue (a restarted worker keeps its predecessor's) */
  counters?: SharedArrayBuffer;
  portCounters?: SharedArrayBuffer;
  /** counter-only nodes of this worker's devices (e.g. udp-uplink) */
  extraNodes?: GraphNode[];
  /** graph features (default: all) */
  features?: readonly GraphFeature[];
  /** obey the test-only `crash` message */
  testHooks?: boolean;
  /** called after every round (the tables' quiescent point) */
  afterRound?: () => void;
  /**
   * attaches the NAT table a `params` message brings (the worker's TableSet.attachNat; tests:
   * NatTable.attach); absent: such a message's table is ignored
   */
  attachNat?: (shared: NatTableShared) => NatTable;
}

export class WorkerLoop {
  readonly ctx: DeviceContext;
  readonly built: BuiltGraph;
  readonly driver: Driver;
  /** the device of each port (the graph's sinks array: entries replaced in place) */
  readonly devices: (Device | null)[] = [];
  stopping = false;
  /** rounds run so far */
  rounds = 0;
  /** the fd (handle) each port's device was made for */
  private readonly handles: number[] = [];
  private readonly ready: (Device | null)[] = new Array<Device | null>(MAX_PORTS + 1).fill(null);
  private lastTick = -Infinity;
  /** when a round last read frames (ms, the owner's clock) */
  private lastBusy = -Infinity;

  constructor(private readonly o: LoopOptions) {
    const pc = new PortCounters(MAX_PORTS, o.portCounters);
    this.ctx = new DeviceContext(pc);
    this.ctx.onError = (dev, op, errno) => this.failed(dev, op, errno);
    this.swapPorts(o.ports);
    const extra = [...this.ctx.nodes(), ...(o.extraNodes ?? [])];
    this.built = buildGraph(
      o.env,
      this.devices,
      o.batch.capacity,
      [...(o.features ?? DATAPLANE_FEATURES), () => extra],
      {
        shared: { counters: o.counters, portCounters: pc },
      },
    );
    this.driver = new Driver(this.built.graph, o.batch, this.devices, this.ctx, pathMinMtu(o.env));
    o.control.post({
      type: 'ready',
      id: o.id,
      counters: this.built.graph.counters.values.buffer as SharedArrayBuffer,
      names: this.built.graph.registry.names,
      portCounters: pc.rxPackets.buffer as SharedArrayBuffer,
    });
  }

  /** Runs rounds until a `stop` message. */
  run(): void {
    while (!this.stopping) this.round(this.nextWait());
  }

  /** How long the next round may wait: 0 while busy polling after traffic, else idleMs. */
  nextWait(): number {
    const bp = this.o.busyPollMs ?? 0;
    return bp > 0 && this.o.now() - this.lastBusy < bp ? 0 : this.o.idleMs;
  }

  /** One round (see the module comment); waits at most timeoutMs for a readable device. */
  round(timeoutMs = this.o.idleMs): void {
    const o = this.o;
    const ready = this.ready;
    const n = o.poller.wait(timeoutMs, ready);
    // control first: a port change applies before any frame of this round is read
    for (let k = 0; k < n; k++) if (ready[k] === null) this.drainControl();
    const nowMs = o.now();
    const sec = Math.floor(nowMs / 1000);
    const nsec = Math.floor((nowMs - sec * 1000) * 1e6);
    const d = this.driver;
    // timers never delay the round's frames: they run after the frames are written, except in the
    // very first round, where they start the graph's clocks (NAT, policy, ARP) before any frame
    let tick = nowMs - this.lastTick >= TICK_MS;
    if (tick) this.lastTick = nowMs;
    if (tick && this.rounds === 0) {
      d.begin(sec, nsec);
      d.timers(nowMs / 1000);
      tick = false;
    }
    d.begin(sec, nsec);
    const devices = this.devices;
    let got = 0;
    for (let k = 0; k < n; k++) {
      const dev = ready[k];
      // a device a port change replaced this round is not read any more
      if (dev !== null && devices[dev.port] === dev) got += d.receive(dev);
    }
    if (got > 0) this.lastBusy = nowMs;
    // the graph runs on what this round read and every device writes its frames now: nothing waits
    // for a fuller batch, a later round or a timer (GRO coalesces only within this round's frames)
    d.process();
    if (tick) {
      d.begin(sec, nsec);
      d.timers(nowMs / 1000);
    }
    this.rounds++;
    o.afterRound?.();
  }

  private drainControl(): void {
    for (;;) {
      const msg = this.o.control.receive();
      if (msg === undefined) return;
      switch (msg.type) {
        case 'stop':
          this.stopping = true;
          break;
        case 'crash':
          if (this.o.testHooks) throw new Error('crash requested through the control API (test hook)');
          break;
        case 'ports':
          this.swapPorts(msg);
          this.driver.minMtu = pathMinMtu(this.o.env);
          this.o.control.post({ type: 'applied', id: this.o.id, seq: msg.seq });
          break;
        case 'params': {
          const env = this.o.env;
          if (env.nat === null && msg.nat !== null && this.o.attachNat !== undefined)
            env.nat = this.o.attachNat(msg.nat);
          env.params = msg.params;
          this.built.graph.setParams(env);
          this.o.control.post({ type: 'applied', id: this.o.id, seq: msg.seq });
          break;
        }
        case 'rearm': {
          const dev = this.devices[msg.port];
          if (dev === null || dev === undefined || dev.name !== msg.name || !dev.failed) break;
          dev.failed = false;
          this.o.poller.add(dev);
          break;
        }
      }
    }
  }

  /**
   * Swaps in the port table of `u` and the devices of the ports whose fd or name changed; the other
   * ports keep their device (and whatever it holds). Removed devices are out of the poller before
   * the caller acknowledges the change (the control thread then closes their fds).
   */
  private swapPorts(u: PortsUpdate): void {
    const o = this.o;
    o.env.ports = new PortTable(u.specs);
    const devices = this.devices;
    const n = Math.max(devices.length, u.specs.length, u.fds.length);
    for (let p = 0; p < n; p++) {
      const spec = u.specs[p] ?? null;
      const fd = u.fds[p] ?? -1;
      const old = devices[p] ?? null;
      if (old !== null && spec !== null && fd >= 0 && this.handles[p] === fd && old.name === spec.name)
        continue;
      if (old !== null) {
        o.poller.remove(old);
        old.close?.();
      }
      this.handles[p] = fd;
      if (spec === null || fd < 0) {
        devices[p] = null;
        continue;
      }
      const dev = o.devices(p, spec, fd, this.ctx, o.batch);
      dev.port = p;
      devices[p] = dev;
      o.poller.add(dev);
    }
    // the graph learns which ports segment tunnel super-frames themselves (ip4-rewrite's decision)
    const tg = o.env.ports.tunnelGso;
    for (let p = 0; p < tg.length; p++) tg[p] = devices[p]?.caps.tunnelGso === true ? 1 : 0;
  }

  /** A device failed: stop waiting for it and tell the control thread (once, until re-armed). */
  private failed(dev: Device, op: DeviceOp, errno: number): void {
    this.o.poller.remove(dev);
    this.o.control.post({
      type: 'device-error',
      id: this.o.id,
      port: dev.port,
      name: dev.name,
      op,
      errno,
      code: errnoName(errno),
    });
  }
}
