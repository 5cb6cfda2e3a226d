// A worker loop over MemDevices, without root and without threads: node-a of the dataplane harness's
// cluster (workloads cali1 and cali2) programmed by a real Programmer (more workloads attached as the
// daemon attaches them), a
// WorkerLoop with a poller that scans MemDevices, a control channel that is two arrays, and a clock
// the test moves. Workload add/del goes through `ports` messages exactly as the daemon sends them.
import { loadConfigText } from '../../src/control/config/load.js';
import { Programmer } from '../../src/control/daemon/program.js';
import { parseIp4 } from '../../src/common/addr.js';
import { Batch } from '../../src/dataplane/graph/packet.js';
import { MAX_PORTS, type PortSpec } from '../../src/dataplane/graph/ports.js';
import type { Device } from '../../src/dataplane/devices/device.js';
import { MemDevice } from '../../src/dataplane/devices/mem.js';
import {
  WorkerLoop,
  type ControlChannel,
  type LoopOptions,
  type Poller,
} from '../../src/dataplane/live/loop.js';
import type { ControlMessage, DeviceErrorEvent, WorkerEvent } from '../../src/dataplane/live/messages.js';
import { clusterYaml, UPLINK_MAC } from '../dataplane/harness.js';
import { NatTable } from '../../src/dataplane/tables/nat/table.js';

export const UPLINK = 'uplink';

/** Readable MemDevices and pending control messages, in the order an epoll set would give them. */
class MemPoller implements Poller {
  readonly devs = new Set<Device>();
  constructor(private readonly controlPending: () => boolean) {}
  add(dev: Device): void {
    this.devs.add(dev);
  }
  remove(dev: Device): void {
    this.devs.delete(dev);
  }
  wait(_timeoutMs: number, ready: (Device | null)[]): number {
    let m = 0;
    if (this.controlPending()) ready[m++] = null;
    for (const d of this.devs) if ((d as MemDevice).readable) ready[m++] = d;
    return m;
  }
}

export interface WorldOptions {
  staticNeighbors?: boolean;
  capacity?: number;
  testHooks?: boolean;
  /** LoopOptions idleMs (default 0) and busyPollMs (default off) */
  idleMs?: number;
  busyPollMs?: number;
}

export class World {
  readonly prog: Programmer;
  readonly loop: WorkerLoop;
  readonly inbox: ControlMessage[] = [];
  readonly events: WorkerEvent[] = [];
  readonly poller: MemPoller;
  /** the devices the loop made, by handle (fd) */
  readonly byHandle = new Map<number, MemDevice>();
  /** per port: the handle its device was made for */
  private readonly handles: number[] = [];
  private nextHandle = 100;
  private seq = 0;
  clockMs = 1_700_000_000_000;

  constructor(o: WorldOptions = {}) {
    const yaml = clusterYaml({ staticNeighbors: o.staticNeighbors });
    this.prog = new Programmer(loadConfigText(yaml, 'world.yaml'), 'node-a', {
      natSeed: 0,
      uplinkMac: UPLINK_MAC,
    });
    this.poller = new MemPoller(() => this.inbox.length > 0);
    const control: ControlChannel = {
      receive: () => this.inbox.shift(),
      post: (e) => this.events.push(e),
    };
    const opts: LoopOptions = {
      id: 0,
      env: { ...this.prog.env },
      batch: new Batch(o.capacity ?? 256),
      ports: this.portsUpdate(),
      devices: (p, spec: PortSpec, fd, ctx, b) => {
        const d = new MemDevice(spec.name, ctx, b.capacity);
        this.byHandle.set(fd, d);
        return d;
      },
      poller: this.poller,
      control,
      now: () => this.clockMs,
      idleMs: o.idleMs ?? 0,
      busyPollMs: o.busyPollMs,
      testHooks: o.testHooks,
      attachNat: (shared) => NatTable.attach(shared),
    };
    this.loop = new WorkerLoop(opts);
  }

  private portsUpdate(): ControlMessage & { type: 'ports' } {
    const specs = this.prog.specs.slice();
    const fds = specs.map((s, p) => {
      if (s === null) return -1;
      this.handles[p] ??= this.nextHandle++;
      return this.handles[p];
    });
    return { type: 'ports', seq: ++this.seq, specs, fds };
  }

  /** Attaches a workload (as the daemon does) and sends the new ports; returns its port index. */
  add(name: string, ipText: string, mac: string): number {
    const p = this.prog.attachWorkload({ name, ip: parseIp4(ipText)!, mac });
    this.handles[p] = this.nextHandle++;
    this.inbox.push(this.portsUpdate());
    return p;
  }

  /** Detaches a workload and sends the new ports. */
  del(name: string): void {
    const p = this.prog.detachWorkload(name);
    delete this.handles[p];
    this.inbox.push(this.portsUpdate());
  }

  /** The current device of a port, by name. */
  dev(name: string): MemDevice {
    const p = this.loop.devices.findIndex((d) => d?.name === name);
    if (p < 0) throw new Error(`no device ${name}`);
    return this.loop.devices[p] as MemDevice;
  }

  port(name: string): number {
    const p = this.loop.devices.findIndex((d) => d?.name === name);
    if (p < 0) throw new Error(`no port ${name}`);
    return p;
  }

  /** Runs one round, 1 ms later than the last. */
  round(): void {
    this.clockMs += 1;
    this.loop.round(0);
  }

  /** Runs rounds until nothing is readable and no message is pending (bounded). */
  drain(maxRounds = 1000): number {
    let n = 0;
    for (; n < maxRounds; n++) {
      const busy = this.inbox.length > 0 || [...this.poller.devs].some((d) => (d as MemDevice).readable);
      if (!busy) return n;
      this.round();
    }
    throw new Error(`still busy after ${maxRounds} rounds`);
  }

  /** Counter `node: reason` of this worker (0 when never bumped). */
  c(name: string): number {
    const [node, reason] = name.split(': ');
    const g = this.loop.built.graph;
    const k = g.registry.names.findIndex((n) => n.node === node && n.reason === reason);
    if (k < 0) throw new Error(`no counter ${name}`);
    return g.counters.values[k];
  }

  get pc() {
    return this.loop.ctx.ports;
  }

  deviceErrors(): DeviceErrorEvent[] {
    return this.events.filter((e): e is DeviceErrorEvent => e.type === 'device-error');
  }

  applied(): number[] {
    return this.events.flatMap((e) => (e.type === 'applied' ? [e.seq] : []));
  }
}

export { MAX_PORTS };
