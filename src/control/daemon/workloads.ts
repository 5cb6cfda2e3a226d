// Workload attachment, the way Calico's CNI plugin does it but with a TAP instead of a veth: a
// persistent multi-queue TAP named `cali` + 11 hex characters (one queue per dataplane worker) is
// moved into the workload's network namespace as eth0, given the workload's /32, a link route to
// 169.254.1.1 and a default route through it. calitap keeps the queues' fds (it *is* the host side).
// The set of workloads is kept in a JSON state file so a restarted (or killed) daemon re-attaches to
// the persistent TAPs without touching the workloads. Control thread only.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { ControlApiError, DeviceError, WorkloadError, asCalitapError } from '../../common/errors.js';
import { formatIp4, normalizeMac, parseIp4 } from '../../common/addr.js';
import type { Programmer } from './program.js';
import { allocateAddress, checkAddress } from '../ipam/ipam.js';
import * as io from '../../dataplane/devices/native.js';
import { ip } from './ip-command.js';

export interface WorkloadRecord {
  name: string;
  netns: string;
  ip: string;
  mac: string;
  /** the TAP's name before it moved into the namespace (Calico's host-side interface name) */
  tap: string;
}

export interface AddRequest {
  name: string;
  netns: string;
  ip?: string;
  mac?: string;
}

export interface Attached {
  record: WorkloadRecord;
  port: number;
  /** one queue fd per worker */
  fds: number[];
}

const NAME_RE = /^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/;
/** The TAP's transmit queue (frames the kernel holds for us): deep enough for a worker's batch bursts. */
const TAP_TX_QUEUE_LEN = 10000;

/** Calico's host-side interface name: "cali" + the first 11 hex digits of sha1(namespace.name). */
export function caliName(netns: string, name: string): string {
  return 'cali' + createHash('sha1').update(`${netns}.${name}`).digest('hex').slice(0, 11);
}

export function netnsPath(netns: string): string {
  return netns.startsWith('/') ? netns : `/var/run/netns/${netns}`;
}

/** The MAC in `ip -j link show <dev>` output. */
function linkMac(json: string, what: string): string {
  let mac: unknown;
  try {
    mac = (JSON.parse(json) as { address?: unknown }[])[0]?.address;
  } catch {
    mac = undefined;
  }
  if (typeof mac !== 'string')
    throw new DeviceError('ip-command', `ip -j link show ${what}: no MAC in its output`);
  return mac;
}

function nsArgs(netns: string): string[] {
  return netns.startsWith('/') ? ['-n', path.basename(netns)] : ['-n', netns];
}

/**
 * Opens a throw-away TAP with IFF_VNET_HDR and asks for the offloads workload TAPs use (TUNSETOFFLOAD
 * CSUM + TSO4); returns null when the kernel takes them, else the one-line reason. The TAP is not
 * persistent: closing its fd removes it. USO is not asked for: the dataplane carries TCP super-frames
 * only (a UDP super-frame from a workload would be dropped as port-input: gso-unsupported).
 */
export function probeTapOffload(): string | null {
  let fd = -1;
  try {
    fd = io.tapOpen(`ctprobe${process.pid % 100000}`, { vnetHdr: true }).fd;
    io.tapSetOffload(fd, { csum: true, tso4: true });
    return null;
  } catch (e) {
    return (e as Error).message;
  } finally {
    if (fd >= 0) io.close(fd);
  }
}

export class WorkloadManager {
  private readonly attached = new Map<string, Attached>();

  constructor(
    private readonly prog: Programmer,
    private readonly node: string,
    private readonly stateFile: string,
    private readonly queues: number,
    /** IFF_VNET_HDR + TUNSETOFFLOAD(csum, tso4): the workload may send 64 KiB TCP super-frames */
    readonly offload = false,
  ) {}

  /** Opens one queue of a workload TAP with this daemon's flags (and offloads). */
  private openQueue(name: string, netns?: string): number {
    const fd = io.tapOpen(name, { multiQueue: true, persist: true, vnetHdr: this.offload, netns }).fd;
    if (this.offload) io.tapSetOffload(fd, { csum: true, tso4: true });
    return fd;
  }

  list(): WorkloadRecord[] {
    return [...this.attached.values()].map((a) => a.record);
  }

  all(): Attached[] {
    return [...this.attached.values()];
  }

  private usedIps(): Set<number> {
    return new Set([...this.attached.values()].map((a) => parseIp4(a.record.ip)!));
  }

  /** Creates the TAP, moves it into the namespace as eth0, addresses and routes it, starts routing. */
  add(req: AddRequest): Attached {
    if (typeof req.name !== 'string' || !NAME_RE.test(req.name)) {
      throw new ControlApiError(
        'bad-request',
        `workload add: --name ${String(req.name)}: expected a DNS-1123 label`,
      );
    }
    if (this.attached.has(req.name))
      throw new WorkloadError('workload-exists', `workload ${req.name} already exists`);
    const nsPath = netnsPath(req.netns);
    if (!fs.existsSync(nsPath)) {
      throw new DeviceError(
        'no-netns',
        `workload add: --netns ${req.netns}: no such network namespace (${nsPath})`,
      );
    }
    const cfg = this.prog.cfg;
    let addr: number;
    if (req.ip !== undefined) {
      const p = parseIp4(req.ip);
      if (p === null)
        throw new ControlApiError('bad-request', `workload add: --ip ${req.ip}: not an IPv4 address`);
      checkAddress(cfg, this.node, p, this.usedIps());
      addr = p;
    } else {
      addr = allocateAddress(cfg, this.node, this.usedIps());
    }
    let mac: string | null = null;
    if (req.mac !== undefined) {
      mac = normalizeMac(req.mac);
      if (mac === null)
        throw new ControlApiError('bad-request', `workload add: --mac ${req.mac}: malformed MAC`);
    }
    const tap = caliName(req.netns, req.name);
    const fds: number[] = [];
    const ns = nsArgs(req.netns);
    try {
      for (let q = 0; q < this.queues; q++) fds.push(this.openQueue(tap));
      io.setTxQueueLen(tap, TAP_TX_QUEUE_LEN);
      ip(['link', 'set', tap, 'netns', req.netns]);
      ip([...ns, 'link', 'set', tap, 'name', 'eth0']);
      if (mac !== null) ip([...ns, 'link', 'set', 'eth0', 'address', mac]);
      ip([...ns, 'link', 'set', 'eth0', 'mtu', String(this.prog.workloadMtu), 'up']);
      ip([...ns, 'addr', 'add', `${formatIp4(addr)}/32`, 'dev', 'eth0']);
      ip([...ns, 'route', 'replace', '169.254.1.1', 'dev', 'eth0', 'scope', 'link']);
      ip([...ns, 'route', 'replace', 'default', 'via', '169.254.1.1', 'dev', 'eth0']);
      if (mac === null) {
        mac = linkMac(ip([...ns, '-j', 'link', 'show', 'eth0']), `${req.netns} eth0`);
      }
    } catch (e) {
      for (const fd of fds) {
        try {
          io.tapSetPersist(fd, false);
        } catch {
          /* already gone */
        }
        io.close(fd);
      }
      throw asCalitapError(e, `workload add ${req.name}: ${tap}`);
    }
    const record: WorkloadRecord = { name: req.name, netns: req.netns, ip: formatIp4(addr), mac, tap };
    const port = this.prog.attachWorkload({ name: tap, ip: addr, mac });
    const a: Attached = { record, port, fds };
    this.attached.set(req.name, a);
    this.save();
    return a;
  }

  /** Stops routing the workload; returns its fds for the caller to close once workers let go. */
  detach(name: string): Attached {
    const a = this.attached.get(name);
    if (!a) throw new WorkloadError('no-workload', `workload ${name}: no such workload`);
    this.prog.detachWorkload(a.record.tap);
    this.attached.delete(name);
    this.save();
    return a;
  }

  /** Deletes the TAP (non-persistent + last fd closed) after the workers stopped using it. */
  destroy(a: Attached): void {
    for (const fd of a.fds) {
      try {
        io.tapSetPersist(fd, false);
      } catch {
        /* ignore */
      }
      io.close(fd);
    }
  }

  /** Re-attaches the workloads of the state file (daemon start). Returns warnings for those that are gone. */
  restore(): string[] {
    const warnings: string[] = [];
    let records: WorkloadRecord[] = [];
    try {
      records = JSON.parse(fs.readFileSync(this.stateFile, 'utf8')) as WorkloadRecord[];
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        warnings.push(`${this.stateFile}: unreadable, starting empty: ${(e as Error).message}`);
      return warnings;
    }
    for (const r of records) {
      const nsPath = netnsPath(r.netns);
      if (!fs.existsSync(nsPath)) {
        warnings.push(`workload ${r.name}: namespace ${r.netns} is gone; forgetting it`);
        continue;
      }
      const fds: number[] = [];
      try {
        for (let q = 0; q < this.queues; q++) {
          fds.push(this.openQueue('eth0', nsPath));
        }
      } catch (e) {
        for (const fd of fds) io.close(fd);
        warnings.push(`workload ${r.name}: cannot re-attach eth0 in ${r.netns}: ${(e as Error).message}`);
        continue;
      }
      const port = this.prog.attachWorkload({ name: r.tap, ip: parseIp4(r.ip)!, mac: r.mac });
      this.attached.set(r.name, { record: r, port, fds });
    }
    this.save();
    return warnings;
  }

  private save(): void {
    try {
      fs.mkdirSync(path.dirname(this.stateFile), { recursive: true });
      const tmp = `${this.stateFile}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(this.list(), null, 2));
      fs.renameSync(tmp, this.stateFile);
    } catch (e) {
      throw asCalitapError(e, `${this.stateFile}: cannot save the workload state`);
    }
  }
}
