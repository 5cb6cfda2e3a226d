// The live daemon's side of network policy (docs/policy.md, "Live"). Holds the node's
// PolicyProgrammer, whose shared tables every dataplane worker attaches at start (a worker builds its
// graph once, so the tables always exist: with no policy resources they are published disabled and
// ip4-policy passes every packet on one load). Keeps the compiler's endpoints in step with the
// workloads this daemon attached: a local workload is policed as the config's (or datastore's)
// WorkloadEndpoint with its address, else with the namespace and labels `workload add` gave (default
// namespace `default`, no labels, profile `kns.<namespace>`; kept in `<state file>.policy.json` so
// a restarted daemon polices its restored workloads the same way). A config change (file reload,
// datastore watch) reprograms incrementally; flows already allowed keep passing. Log-rule hits are
// drained into the daemon's pino log. Control (main) thread only; buffers belong to the tables.
import * as fs from 'node:fs';
import type { Logger } from 'pino';
import { parseIp4 } from '../../common/addr.js';
import type { PolicyShared } from '../../dataplane/features/policy/nodes.js';
import { PolicyProgrammer } from '../policy/programmer.js';
import type { PolicyWorkload } from '../policy/types.js';
import type { ClusterConfig } from '../config/types.js';
import type { Programmer } from './program.js';
import type { WorkloadRecord } from './workloads.js';

/** What `workload add` said about a workload's endpoint (request fields namespace and labels). */
interface AddedMeta {
  namespace: string;
  labels: Record<string, string>;
}

/** Log lines per drain (one a second): the workers already rate-limit, this bounds a burst of them. */
const LOG_LINES_PER_DRAIN = 100;

/**
 * Seconds after a restart during which ip4-policy picks up mid-stream TCP connections (C_PICKUP):
 * the flow table lived in the old process, so without it every connection open across a restart
 * would be dropped as invalid. Long enough for any established connection to send a segment
 * (keepalives aside); after it a TCP segment that fits no flow and is not a SYN is invalid again.
 */
export const PICKUP_SECONDS = 60;

export class PolicyGlue {
  readonly policy: PolicyProgrammer;
  private readonly added = new Map<string, AddedMeta>();
  private readonly metaFile: string | null;
  /** the last full configuration's policy and endpoints (this node's WorkloadEndpoints included) */
  private src: Pick<ClusterConfig, 'policy' | 'endpoints'>;

  constructor(
    prog: Programmer,
    private readonly node: string,
    /** the workloads attached now (WorkloadManager) */
    private readonly attached: () => readonly WorkloadRecord[],
    private readonly log: Logger,
    /** the daemon's state file: what `workload add` said is kept beside it (`.policy.json`) */
    stateFile?: string,
  ) {
    this.metaFile = stateFile === undefined ? null : `${stateFile}.policy.json`;
    this.loadMeta();
    this.src = { policy: prog.cfg.policy, endpoints: prog.cfg.endpoints };
    // always: workers cannot add the ip4-policy node later; disabled tables cost one load per packet
    this.policy =
      prog.policy ?? PolicyProgrammer.attach(prog.cfg, prog.nodeName, prog.env, { always: true })!;
    this.program(this.src, 'start'); // the workloads restored from the state file
    if (attached().length > 0) this.pickUpOpenFlows();
  }

  /** A restart re-attached workloads: their open TCP connections are picked up for a while. */
  private pickUpOpenFlows(): void {
    const tables = this.policy.tables;
    tables.pickup = true;
    this.log.info({ seconds: PICKUP_SECONDS }, 'policy: picking up TCP connections open across the restart');
    setTimeout(() => {
      tables.pickup = false;
    }, PICKUP_SECONDS * 1000).unref();
  }

  /** What the workers attach (WorkerInit.policy). */
  shared(): PolicyShared {
    return this.policy.shared();
  }

  /** The endpoints to compile: the config's, plus the attached workloads it does not describe. */
  endpoints(cfg: Pick<ClusterConfig, 'endpoints'>): PolicyWorkload[] {
    const out: PolicyWorkload[] = [...cfg.endpoints];
    const known = new Set<number>();
    for (const e of cfg.endpoints)
      if (e.node === this.node) for (const n of e.ipNetworks) if (n.len === 32) known.add(n.addr);
    for (const r of this.attached()) {
      const ip = parseIp4(r.ip);
      if (ip === null || known.has(ip)) continue;
      const meta = this.added.get(r.name) ?? { namespace: 'default', labels: {} };
      out.push({
        name: r.name,
        namespace: meta.namespace,
        node: this.node,
        ipNetworks: [{ addr: ip, len: 32 }],
        labels: meta.labels,
      });
    }
    return out;
  }

  /**
   * Programs `cfg`'s policy (call it with the full configuration, before anything filters this
   * node's WorkloadEndpoints out of it). A refused publish (policy-table-full) is logged; the policy
   * in force stays.
   */
  program(cfg: Pick<ClusterConfig, 'policy' | 'endpoints'>, why: string): void {
    // the array, not cfg: Reprogrammer.apply() replaces cfg.endpoints with a filtered copy
    this.src = { policy: cfg.policy, endpoints: cfg.endpoints };
    try {
      const gen = this.policy.program({ policy: cfg.policy, endpoints: this.endpoints(cfg) });
      this.log.debug({ generation: gen, why }, 'policy programmed');
    } catch (e) {
      this.log.error({ why, err: (e as Error).message }, 'policy not applied; the policy in force stays');
    }
  }

  /** Remembers what `workload add` said about its endpoint (before the ports are published). */
  remember(r: WorkloadRecord, p: Record<string, unknown>): void {
    const labels: Record<string, string> = {};
    const list = Array.isArray(p.labels) ? (p.labels as unknown[]) : [];
    for (const item of list) {
      const m = /^([^=]+)=(.*)$/.exec(String(item));
      if (m) labels[m[1]] = m[2];
    }
    const ns = typeof p.namespace === 'string' && p.namespace !== '' ? p.namespace : 'default';
    this.added.set(r.name, { namespace: ns, labels });
    this.saveMeta();
  }

  private loadMeta(): void {
    if (this.metaFile === null || !fs.existsSync(this.metaFile)) return;
    try {
      const v = JSON.parse(fs.readFileSync(this.metaFile, 'utf8')) as Record<string, AddedMeta>;
      for (const [k, m] of Object.entries(v))
        if (typeof m?.namespace === 'string' && typeof m.labels === 'object' && m.labels !== null)
          this.added.set(k, { namespace: m.namespace, labels: { ...m.labels } });
    } catch (e) {
      this.log.warn(
        { file: this.metaFile, err: (e as Error).message },
        "policy: cannot read the workloads' namespaces and labels; restored workloads get none",
      );
    }
  }

  private saveMeta(): void {
    if (this.metaFile === null) return;
    try {
      const tmp = `${this.metaFile}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.added)));
      fs.renameSync(tmp, this.metaFile);
    } catch (e) {
      this.log.warn(
        { file: this.metaFile, err: (e as Error).message },
        'policy: cannot save workload labels',
      );
    }
  }

  /** Recompiles the endpoints after workloads came or went (called before ports are published). */
  refresh(): void {
    const live = new Set(this.attached().map((r) => r.name));
    const gone = [...this.added.keys()].filter((k) => !live.has(k));
    for (const k of gone) this.added.delete(k);
    if (gone.length > 0) this.saveMeta();
    this.program(this.src, 'workloads changed');
  }

  /** Deny counters per endpoint, direction and cause, as `calitap stats` rows. */
  counterRows(): { node: string; reason: string; count: number }[] {
    return this.policy.counterRows().map((r) => ({ node: r.node, reason: r.reason, count: r.value }));
  }

  /** Writes the Log-rule hits since the last call to the log (structured, bounded per call). */
  drainLog(): void {
    const { lines, lost } = this.policy.drainLog();
    for (const l of lines.slice(0, LOG_LINES_PER_DRAIN)) this.log.info({ policyLog: l }, 'policy log');
    const dropped = lost + Math.max(0, lines.length - LOG_LINES_PER_DRAIN);
    if (dropped > 0) this.log.warn({ dropped }, 'policy log: records not written (rate limit)');
  }
}
