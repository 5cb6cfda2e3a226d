// `calitap run`: the daemon. The main thread is the control plane (config, IPAM, workloads, BGP,
// control API); N worker threads are the dataplane. Tables are SharedArrayBuffers the control thread
// writes and the workers read; port changes reach workers as messages (with an eventfd to wake them)
// and are acknowledged before a removed port's fds are closed. A worker that dies is restarted with
// the same fds and counters. A port whose device fails in a worker (read or write error) is logged
// with its name and errno, then re-armed in that worker after a backoff, or removed when its
// workload's namespace is gone. SIGTERM/SIGINT stop everything cleanly; persistent TAPs and the state
// file let a restarted or killed daemon pick its workloads up again.
//
// The uplink is one AF_PACKET socket per worker (`--uplink packet`, the default), or with
// `--uplink udp` one UDP socket per worker bound to the node IP and the VXLAN port with SO_REUSEPORT
// (VXLAN only; for hosts without CAP_NET_RAW; see docs/live.md and dataplane/devices/udp.ts).
import * as os from 'node:os';
import * as fs from 'node:fs';
import type * as http from 'node:http';
import { Worker, MessageChannel, type MessagePort } from 'node:worker_threads';
import pino from 'pino';
import { loadConfigFile } from '../config/load.js';
import { Programmer } from './program.js';
import { WorkloadManager, netnsPath, probeTapOffload, type Attached } from './workloads.js';
import { addWorkload, type DaemonDatastore } from './datastore-hooks.js';
import { startApiServer, type ApiServer } from './api.js';
import { CalitapError, ConfigError } from '../../common/errors.js';
import { formatIp4 } from '../../common/addr.js';
import * as io from '../../dataplane/devices/native.js';
import type {
  DeviceErrorEvent,
  ParamsUpdate,
  PortsUpdate,
  UplinkMode,
  WorkerEvent,
  WorkerInit,
} from '../../dataplane/live/messages.js';
import { PORT_UPLINK } from '../../dataplane/graph/ports.js';
import { collectStats, type StatsView } from './stats.js';
import { BgpGlue, speakerOptions } from './bgp-glue.js';
import { uplinkFromKernel } from './host-uplink.js';
import { startMetrics } from './metrics.js';
import { PolicyGlue } from './policy-glue.js'; // policy wiring (issue 11)
import { uplinkFilterExpr } from './uplink-filter.js';
import { HostPort } from './host-port.js'; // host TAP (issue 11)
import { checkUdpUplink, openUdpUplinkSocket } from './udp-uplink.js';

export interface DaemonOptions {
  config: string;
  node: string;
  socket: string;
  stateFile: string;
  workers?: number;
  /** Prometheus metrics on 127.0.0.1:<port> (off when undefined) */
  metricsPort?: number;
  /** start the BGP speaker (default true when the config has peers or a mesh) */
  bgp?: boolean;
  /** 'packet' (default): AF_PACKET uplink; 'udp': VXLAN over kernel UDP sockets (no CAP_NET_RAW) */
  uplink?: UplinkMode;
  /** TAPs with IFF_VNET_HDR + TSO (default true; false: --no-offload); tapOffload: old flag, no effect */
  offload?: boolean;
  tapOffload?: boolean;
  /** datastore mode (live-config.ts): the cluster as listed, hooks for workloads and status */
  datastore?: DaemonDatastore;
  /** the host TAP's name (default calitap-host0); false: none (--no-host-interface) */
  hostInterface?: string | false;
}
export { checkUdpUplink } from './udp-uplink.js';

interface WorkerSlot {
  id: number;
  worker: Worker | null;
  control: MessagePort;
  wakeFd: number;
  uplinkFd: number;
  counters?: SharedArrayBuffer;
  portCounters?: SharedArrayBuffer;
  names: { node: string; reason: string }[];
  applied: number;
  restarts: number;
  /** per port: consecutive device errors (re-arm backoff) and when the last one came */
  errors: Map<number, { count: number; last: number }>;
}

/** What the control thread does about a failed device (see Daemon.onDeviceError). */
export type DeviceErrorAction = 'rearm' | 'remove' | 'ignore';

/**
 * The uplink is always re-armed; a workload port is removed when its namespace is gone (its TAP went
 * with it), re-armed otherwise; a port that is no longer attached (deleted meanwhile) is ignored.
 */
export function deviceErrorAction(
  e: Pick<DeviceErrorEvent, 'port' | 'name'>,
  workloads: readonly Attached[],
  namespaceExists: (netns: string) => boolean,
  hostPort = -1,
): { action: DeviceErrorAction; workload?: Attached } {
  if (e.port === PORT_UPLINK || e.port === hostPort) return { action: 'rearm' };
  const w = workloads.find((a) => a.port === e.port && a.record.tap === e.name);
  if (w === undefined) return { action: 'ignore' };
  return { action: namespaceExists(w.record.netns) ? 'rearm' : 'remove', workload: w };
}

/** Re-arm delay after `count` consecutive errors of one port: 100 ms doubling, at most 5 s. */
export function rearmDelayMs(count: number): number {
  return Math.min(5000, 100 * 2 ** Math.min(count, 6));
}

/** Consecutive errors further apart than this start the backoff over. */
const ERROR_WINDOW_MS = 30_000;

export class Daemon {
  readonly log = pino({ name: 'calitap', level: process.env.CALITAP_LOG ?? 'info' }, pino.destination(2));
  readonly prog: Programmer;
  readonly workloads: WorkloadManager;
  readonly policy: PolicyGlue; // network policy (policy-glue.ts)
  readonly host: HostPort | null = null; // the host TAP (host-port.ts)
  private readonly slots: WorkerSlot[] = [];
  private readonly quietFds: number[] = [];
  /** the udp uplink's sockets have UDP_GRO (offloads on and the kernel took it; openUdpUplink) */
  private udpGro = false;
  private api: ApiServer | null = null;
  private metrics: http.Server | null = null;
  private seq = 0;
  /** the uplink BPF filter in force (tcpdump expression); null: none could be compiled */
  private uplinkFilter: string | null = null;
  private stopping = false;
  /** the tables' periodic control-side work (Programmer.maintain) */
  private maintainTimer: NodeJS.Timeout | null = null;
  bgp: BgpGlue | null = null;
  readonly started = Date.now();
  readonly uplinkMode: UplinkMode;

  constructor(readonly opts: DaemonOptions) {
    const cfg = opts.datastore?.cluster ?? loadConfigFile(opts.config);
    // no Uplink resource, or no gateway in it: take them from the host's kernel
    for (const line of uplinkFromKernel(cfg, opts.node)) this.log.info(`from the kernel: ${line}`);
    const uplink = cfg.uplinks.get(opts.node)!;
    this.uplinkMode = opts.uplink ?? 'packet';
    const udpWarnings = this.uplinkMode === 'udp' ? checkUdpUplink(cfg, opts.node) : [];
    let mac: string;
    try {
      mac = io.ifMac(uplink.interfaceName);
    } catch (e) {
      throw new ConfigError(
        `${cfg.source}: Uplink ${opts.node}: spec.interfaceName ${uplink.interfaceName}: ${(e as Error).message}`,
      );
    }
    if (uplink.mac !== undefined && uplink.mac !== mac) {
      this.log.warn(
        { configured: uplink.mac, actual: mac },
        'Uplink spec.mac differs from the interface; using the interface MAC',
      );
    }
    const mesh = opts.datastore?.bgpMesh === true && cfg.bgp.nodeToNodeMeshEnabled ? 1 : 0;
    const bgpPeers = opts.bgp === false ? 0 : Math.max(mesh, speakerOptions(cfg, opts.node).peers.length);
    this.prog = new Programmer(cfg, opts.node, {
      uplinkMac: mac,
      configEndpoints: false,
      remoteBlocksFromConfig: bgpPeers === 0,
      uplinkL2: this.uplinkMode === 'packet',
      // the flow table is looked up at random over tens of MiB: ask for huge pages (a hint)
      natAdvise: (sab) => void io.adviseHugePages(sab),
    });
    if (bgpPeers > 0) this.bgp = new BgpGlue(this.prog, this.log);
    for (const w of this.prog.warnings) this.log.warn(w);
    for (const w of udpWarnings) this.log.warn(w);
    for (const i of cfg.ignored) this.log.info({ kind: i.kind, name: i.name }, `ignored: ${i.reason}`);
    const n = opts.workers ?? os.availableParallelism();
    const refused = opts.offload === false ? null : probeTapOffload();
    if (refused !== null) this.log.warn({ reason: refused }, 'TAP offloads refused: plain TAPs'); // one line
    const offload = opts.offload !== false && refused === null;
    this.workloads = new WorkloadManager(this.prog, opts.node, opts.stateFile, n, offload);
    for (const w of this.workloads.restore()) this.log.warn(w);
    this.policy = new PolicyGlue(
      this.prog,
      opts.node,
      () => this.workloads.all().map((a) => a.record),
      this.log,
      opts.stateFile,
    );
    const hostOpts = { name: opts.hostInterface, queues: n, offload, stateFile: opts.stateFile };
    this.host = HostPort.start(this.prog, this.policy.policy.tables, hostOpts, this.log);
    if (this.uplinkMode === 'udp') this.openUdpUplink(n);
    else this.openUplink(n, uplink.interfaceName);
  }

  private addSlot(k: number, uplinkFd: number): void {
    const wakeFd = io.eventfdCreate();
    const { port1, port2 } = new MessageChannel();
    this.slots.push({
      id: k,
      worker: null,
      control: port1,
      wakeFd,
      uplinkFd,
      names: [],
      applied: 0,
      restarts: 0,
      errors: new Map(),
    });
    this.peers.set(k, port2);
  }

  /**
   * `--uplink udp`: one UDP socket per worker on nodeIp:vxlanPort with SO_REUSEPORT (the kernel
   * spreads flows over them by hash). The sockets themselves keep the kernel from answering VXLAN with
   * port unreachable, and IPIP is refused by checkUdpUplink: no BPF, no quiet sockets.
   */
  private openUdpUplink(n: number): void {
    const p = this.prog.env.params;
    // opt-in (CALITAP_UDP_GRO=1): with it a round reads few datagrams (each may become 64 frames),
    // which costs small packets ~3x (docs/live.md); TCP gains
    this.udpGro = this.workloads.offload && process.env.CALITAP_UDP_GRO === '1';
    for (let k = 0; k < n; k++) {
      try {
        const s = openUdpUplinkSocket(formatIp4(p.nodeIp), p.vxlanPort, this.udpGro);
        if (this.udpGro && !s.gro) this.log.warn({ reason: s.refused }, 'UDP_GRO refused: plain udp sockets');
        this.udpGro = s.gro;
        this.addSlot(k, s.fd);
      } catch (e) {
        for (const s of this.slots) {
          io.close(s.uplinkFd);
          io.close(s.wakeFd);
        }
        throw e;
      }
    }
  }

  /** One packet socket per worker (fanout), filtered to what calitap handles; quiet the kernel. */
  private openUplink(n: number, ifname: string): void {
    const cfg = this.prog.cfg;
    const p = this.prog.env.params;
    const expr = uplinkFilterExpr(cfg, p, this.opts.node);
    let bpf: Uint8Array | undefined;
    try {
      bpf = io.bpfFromTcpdump(expr, ifname);
      this.uplinkFilter = expr;
    } catch (e) {
      this.log.warn(
        { err: (e as Error).message },
        'no BPF filter (tcpdump missing?): every uplink frame is copied',
      );
    }
    const group = (process.pid & 0x7fff) | 1;
    for (let k = 0; k < n; k++) {
      // vnetHdr: frames from veths and virtio NICs may carry partial checksums (offload); the header
      // says so and the worker completes them before NAT or forwarding
      const fd = io.packetSocket(ifname, {
        fanoutGroup: group,
        fanoutMode: 'hash',
        bpf,
        rcvbuf: 4 << 20,
        vnetHdr: true,
      });
      this.addSlot(k, fd);
    }
    // Keep the host kernel quiet about tunnel traffic it does not own: without a listener it would
    // answer VXLAN with port unreachable and IPIP with protocol unreachable.
    const live = this.opts.datastore !== undefined; // a datastore may switch pool modes live
    if (live || cfg.pools.some((x) => x.vxlanMode !== 'Never'))
      this.quietFds.push(io.udpSocket('0.0.0.0', p.vxlanPort, { rcvbuf: 1024 }));
    if (live || cfg.pools.some((x) => x.ipipMode !== 'Never'))
      this.quietFds.push(io.rawSocket(4, { rcvbuf: 1024, dropAll: true }));
  }

  private readonly peers = new Map<number, MessagePort>();

  private portsFor(k: number): PortsUpdate {
    const specs = this.prog.specs;
    const fds: number[] = specs.map(() => -1);
    fds[0] = this.slots[k].uplinkFd;
    for (const a of this.workloads.all()) fds[a.port] = a.fds[k] ?? -1;
    if (this.host !== null) fds[this.host.port] = this.host.fds[k] ?? -1;
    return { type: 'ports', seq: this.seq, specs, fds };
  }

  /**
   * Hands the current DataplaneParams (and the NAT table, once it exists) to every running worker,
   * which applies them between two batches: no restart, nothing queued is lost. A worker (re)started
   * later reads them from WorkerInit. The uplink filter follows new pools and addresses.
   */
  publishParams(why: string): void {
    this.seq++;
    const msg: ParamsUpdate = {
      type: 'params',
      seq: this.seq,
      params: this.prog.env.params,
      nat: this.prog.tables.nat?.shared ?? null,
    };
    for (const s of this.slots) {
      if (s.worker === null) continue;
      s.control.postMessage(msg);
      io.eventfdWrite(s.wakeFd, 1);
    }
    this.log.info({ why }, 'dataplane parameters updated live');
    const expr = uplinkFilterExpr(this.prog.cfg, this.prog.env.params, this.opts.node);
    if (this.uplinkMode !== 'packet' || this.uplinkFilter === null || expr === this.uplinkFilter) return;
    try {
      const bpf = io.bpfFromTcpdump(expr, this.prog.uplink.interfaceName);
      for (const s of this.slots) io.setBpf(s.uplinkFd, bpf);
      this.uplinkFilter = expr;
    } catch (e) {
      this.log.error({ err: (e as Error).message }, 'uplink filter not updated: restart calitap for it');
    }
  }

  private spawn(k: number): void {
    const s = this.slots[k];
    const init: WorkerInit = {
      id: k,
      control: this.peers.get(k)!,
      wakeFd: s.wakeFd,
      tables: this.prog.tables.shared,
      policy: this.policy.shared(), // policy: always attached (the graph is built once)
      params: this.prog.env.params,
      ports: this.portsFor(k),
      counters: s.counters,
      portCounters: s.portCounters,
      batchSize: 256,
      idleMs: 100,
      uplinkVnetHdr: this.uplinkMode === 'packet',
      uplinkMode: this.uplinkMode,
      tapOffload: this.workloads.offload,
      uplinkUdpGro: this.udpGro,
      testHooks: process.env.CALITAP_TEST_HOOKS === '1',
    };
    const w = new Worker(new URL('../../dataplane/live/worker.js', import.meta.url), {
      workerData: init,
      transferList: [init.control],
    });
    s.worker = w;
    w.on('message', (e: WorkerEvent) => {
      if (e.type === 'ready') {
        s.counters = e.counters;
        s.portCounters = e.portCounters;
        s.names = e.names;
      } else if (e.type === 'applied') s.applied = e.seq;
      else if (e.type === 'device-error') this.onDeviceError(s, e);
      else if (e.type === 'error') this.log.error({ worker: k, err: e.message }, 'worker failed');
    });
    w.on('error', (err) => this.log.error({ worker: k, err: err.message }, 'worker error'));
    w.on('exit', (code) => {
      s.worker = null;
      this.prog.tables.release(k); // its reader slot: reclamation must not wait for a dead worker
      if (this.stopping) return;
      s.restarts++;
      this.log.error({ worker: k, code, restarts: s.restarts }, 'worker exited; restarting it');
      // its control port went with it: make a new channel
      const { port1, port2 } = new MessageChannel();
      s.control = port1;
      this.peers.set(k, port2);
      setTimeout(() => this.spawn(k), Math.min(1000, 50 * s.restarts));
    });
  }

  /** Sends the current port table to every worker and waits until all applied it. */
  async publishPorts(): Promise<void> {
    this.policy.refresh(); // policy: workloads that came or went, before their ports change
    this.seq++;
    for (let k = 0; k < this.slots.length; k++) {
      const s = this.slots[k];
      if (s.worker === null) continue;
      s.control.postMessage(this.portsFor(k));
      io.eventfdWrite(s.wakeFd, 1);
    }
    const want = this.seq;
    const deadline = Date.now() + 5000;
    while (this.slots.some((s) => s.worker !== null && s.applied < want)) {
      if (Date.now() > deadline)
        throw new CalitapError('workers-busy', 'workers did not apply the port change within 5 s');
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /**
   * A worker's device failed and the worker stopped reading it: log it with the port's name and
   * errno, then re-arm it in that worker (after a backoff that grows while it keeps failing) or,
   * when the workload's namespace is gone, remove the workload.
   */
  private onDeviceError(s: WorkerSlot, e: DeviceErrorEvent): void {
    const where = { worker: s.id, port: e.name, op: e.op, errno: e.errno, code: e.code };
    this.log.warn(where, `port ${e.name}: ${e.op} failed: ${e.code} (errno ${e.errno})`);
    if (this.stopping) return;
    const { action, workload } = deviceErrorAction(
      e,
      this.workloads.all(),
      (ns) => fs.existsSync(netnsPath(ns)),
      this.host?.port,
    );
    if (action === 'ignore') {
      this.log.info(where, `port ${e.name}: no longer attached; nothing to re-arm`);
      return;
    }
    if (action === 'remove') {
      const name = workload!.record.name;
      this.log.warn(
        { ...where, workload: name, netns: workload!.record.netns },
        `workload ${name}: namespace ${workload!.record.netns} is gone; removing its port`,
      );
      this.removeWorkload(name).catch((err: Error) =>
        this.log.error({ ...where, err: err.message }, `workload ${name}: removal failed`),
      );
      return;
    }
    const now = Date.now();
    const prev = s.errors.get(e.port);
    const count = prev !== undefined && now - prev.last < ERROR_WINDOW_MS ? prev.count + 1 : 1;
    s.errors.set(e.port, { count, last: now });
    const delay = rearmDelayMs(count - 1);
    this.log.info({ ...where, delayMs: delay, attempt: count }, `port ${e.name}: re-arming in ${delay} ms`);
    setTimeout(() => {
      if (this.stopping || s.worker === null) return;
      s.control.postMessage({ type: 'rearm', port: e.port, name: e.name });
      io.eventfdWrite(s.wakeFd, 1);
    }, delay).unref();
  }

  /** Stops routing a workload, waits until no worker uses its queues, and deletes its TAP. */
  async removeWorkload(name: string): Promise<Attached> {
    const a: Attached = this.workloads.detach(name);
    await this.publishPorts();
    this.workloads.destroy(a);
    for (const s of this.slots) s.errors.delete(a.port);
    // datastore mode: its WorkloadEndpoint and address go too
    await this.opts.datastore?.release(a.record.name, a.record.ip);
    return a;
  }

  stats(): StatsView {
    const s = collectStats(this.slots, this.prog.env.ports.names, this.prog.specs);
    s.counters.push(...this.prog.counters()); // control-side table refusals (e.g. neighbor-table: full)
    s.counters.push(...this.policy.counterRows()); // policy: denials per endpoint, direction, cause
    return s;
  }

  async start(): Promise<void> {
    for (let k = 0; k < this.slots.length; k++) this.spawn(k);
    // wait for every worker's first 'ready' so stats have counters
    const deadline = Date.now() + 10_000;
    while (this.slots.some((s) => s.counters === undefined)) {
      if (Date.now() > deadline) throw new CalitapError('workers-start', 'workers did not start within 10 s');
      await new Promise((r) => setTimeout(r, 10));
    }
    this.api = await startApiServer(this.opts.socket, {
      status: () => ({
        node: this.opts.node,
        peers: this.bgp?.status() ?? [],
        uptime: (Date.now() - this.started) / 1000,
        ...(this.opts.datastore ? { datastore: this.opts.datastore.status() } : {}),
      }),
      routes: () => this.prog.table(),
      stats: () => this.stats(),
      neighbors: () => this.prog.env.nbr.entries().map((e) => ({ ...e, ip: formatIp4(e.ip) })),
      'workload.list': () => this.workloads.list(),
      workers: () => this.slots.map((s) => ({ id: s.id, running: s.worker !== null, restarts: s.restarts })),
      ...(process.env.CALITAP_TEST_HOOKS === '1'
        ? {
            // tests only: make a worker die the way a bug would, to prove it is restarted
            'test.crash-worker': (p: Record<string, unknown>) => {
              const s = this.slots[Number(p.id ?? 0)];
              if (s?.worker === null || s === undefined)
                throw new CalitapError('bad-request', 'no such running worker');
              s.control.postMessage({ type: 'crash' });
              io.eventfdWrite(s.wakeFd, 1);
              return { id: s.id };
            },
          }
        : {}),
      'workload.add': async (p) => {
        const a = await addWorkload(this.opts.datastore, p, (ip) =>
          this.workloads.add({
            name: String(p.name),
            netns: String(p.netns),
            ip,
            mac: p.mac as string | undefined,
          }),
        );
        this.policy.remember(a.record, p); // policy: its namespace and labels
        await this.publishPorts();
        this.log.info(a.record, 'workload added');
        return a.record;
      },
      'workload.del': async (p) => {
        const a = await this.removeWorkload(String(p.name));
        this.log.info(a.record, 'workload deleted');
        return a.record;
      },
    });
    this.maintainTimer = setInterval(() => {
      try {
        const n = this.prog.maintain(Math.floor(Date.now() / 1000) | 0);
        if (n > 0) this.log.info({ routes: n }, 'installed routes a full table had refused');
        this.policy.drainLog(); // policy: Log-rule hits into the log
        this.host?.poll(() => void this.publishPorts().catch(() => undefined)); // host addresses
      } catch (e) {
        this.log.error({ err: (e as Error).message }, 'table maintenance failed');
      }
    }, 1000);
    this.maintainTimer.unref();
    if (this.bgp !== null) await this.bgp.start();
    if (this.opts.metricsPort !== undefined) this.metrics = await startMetrics(this, this.opts.metricsPort);
    this.log.info(
      {
        node: this.opts.node,
        workers: this.slots.length,
        uplink: this.uplinkMode,
        socket: this.opts.socket,
        workloads: this.workloads.list().length,
      },
      'calitap running',
    );
  }

  async stop(reason: string): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.log.info({ reason }, 'stopping');
    if (this.maintainTimer !== null) clearInterval(this.maintainTimer);
    await this.bgp?.stop();
    for (const s of this.slots) {
      if (s.worker === null) continue;
      s.control.postMessage({ type: 'stop' });
      io.eventfdWrite(s.wakeFd, 1);
    }
    await Promise.all(
      this.slots.map((s) =>
        s.worker === null ? undefined : new Promise<void>((r) => s.worker!.once('exit', () => r())),
      ),
    );
    await this.api?.close();
    this.metrics?.close();
    try {
      fs.unlinkSync(this.opts.socket);
    } catch {
      /* gone */
    }
    for (const fd of this.quietFds) io.close(fd);
    for (const s of this.slots) {
      io.close(s.uplinkFd);
      io.close(s.wakeFd);
    }
    // workload TAPs are persistent: closing the queues leaves them (and the workloads) in place
    for (const a of this.workloads.all()) for (const fd of a.fds) io.close(fd);
    this.host?.close(); // persistent too: the TAP and its routes stay
  }
}

export async function runDaemon(opts: DaemonOptions): Promise<Daemon> {
  const d = new Daemon(opts);
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => {
      void d.stop(sig).then(() => process.exit(0));
    });
  }
  await d.start();
  return d;
}
