// PolicyProgrammer: the control-side owner of one node's policy dataplane. It creates the shared
// tables (PolicyTables: compiled programs + IP sets; PolicyFlowTable: allowed flows), keeps the
// compiler in step with the configuration (`program(cfg)`: a diff, then one publish), and reads back
// what the dataplane counted (deny counters per endpoint, direction and cause) and logged (Log
// rules). Runs on the control (main) thread; the daemon and replay call it. A publish that does not
// fit the bank is refused as a whole (CalitapError `policy-table-full`): the generation in force
// stays in force.
import { TableError } from '../../common/errors.js';
import { formatIp4 } from '../../common/addr.js';
import type { CounterRow } from '../../dataplane/graph/counters.js';
import type { DataplaneEnv, PolicyEnv } from '../../dataplane/graph/env.js';
import { PolicyTables, type PolicyLogRecord } from '../../dataplane/tables/policy/tables.js';
import { PolicyFlowTable } from '../../dataplane/tables/policy/flows.js';
import { policyCounterRows } from '../../dataplane/features/policy/counters.js';
import type { PolicyShared } from '../../dataplane/features/policy/nodes.js';
import { PolicyCompiler } from './compile.js';
import { buildImage, ImageBuffer } from './image.js';
import {
  EMPTY_POLICY_CONFIG,
  hasPolicy,
  type PolicyEndpoint,
  type PolicySource,
  type PolicyWorkload,
} from './types.js';

export interface PolicyProgrammerOptions {
  /** Int32 words per bank (default 8 Mi: 32 MiB, committed only as used) */
  bankWords?: number;
  counters?: number;
  /** flow table entries (a power of two) */
  flows?: number;
  /** flow table hash key (replay: fixed, so slot choices are reproducible) */
  seed?: number;
  /** create the tables even when the config has no policy yet (the daemon: policies may come later) */
  always?: boolean;
}

/** A Log-action hit, for the control thread's structured log. */
export interface PolicyLogLine {
  endpoint: string;
  rule: string;
  proto: number;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  sec: number;
}

/**
 * The compiler's view of a WorkloadEndpoint from the config. Cached by the endpoint object: a
 * configuration rebuilt from a datastore keeps the objects of unchanged endpoints, and the same view
 * lets the compiler's diff skip them on identity (no per-endpoint allocation or comparison).
 */
export function policyEndpoint(e: PolicyWorkload): PolicyEndpoint {
  let v = viewOf.get(e);
  if (v === undefined) {
    v = endpointView(e);
    viewOf.set(e, v);
  }
  return v;
}

const viewOf = new WeakMap<PolicyWorkload, PolicyEndpoint>();

function endpointView(e: PolicyWorkload): PolicyEndpoint {
  return {
    key: `${e.namespace}/${e.name}`,
    namespace: e.namespace,
    node: e.node,
    ipNetworks: e.ipNetworks,
    labels: e.labels ?? {},
    ports: e.ports ?? [],
    ...(e.profiles === undefined ? {} : { profiles: e.profiles }),
  };
}

export class PolicyProgrammer {
  readonly tables: PolicyTables;
  readonly flows: PolicyFlowTable;
  readonly compiler: PolicyCompiler;
  private readonly image = new ImageBuffer();
  private logNext = 0;
  /** words of the image in force */
  imageWords = 0;

  constructor(
    readonly node: string,
    opts: PolicyProgrammerOptions = {},
  ) {
    this.tables = PolicyTables.create({ bankWords: opts.bankWords, counters: opts.counters });
    this.flows = PolicyFlowTable.create(opts.flows ?? 1 << 18, opts.seed ?? 0);
    this.compiler = new PolicyCompiler(node, this.tables.counters.length);
  }

  /**
   * The replay/daemon hook: when the config has policy resources (or `always`), creates the
   * programmer, programs `cfg` and hangs the tables on `env.policy` (the ip4-policy feature reads
   * them). Returns null when policy is off.
   */
  static attach(
    cfg: PolicySource,
    node: string,
    env: DataplaneEnv,
    opts: PolicyProgrammerOptions = {},
  ): PolicyProgrammer | null {
    if (!opts.always && !hasPolicy(cfg.policy)) return null;
    const p = new PolicyProgrammer(node, opts);
    p.program(cfg);
    env.policy = p.env();
    return p;
  }

  /** What the dataplane needs (workers attach `tables.shared` and `flows.shared` instead). */
  env(): PolicyEnv {
    return {
      tables: this.tables,
      flows: this.flows,
      describe: (c) => this.compiler.counterLabels[c] ?? `counter ${c}`,
    };
  }

  /** What workers attach (features/policy/nodes.ts attachPolicy). */
  shared(): PolicyShared {
    return { tables: this.tables.shared, flows: this.flows.shared };
  }

  /**
   * A workload the daemon attached (or changed) outside the config file (`calitap workload add`):
   * compiles it and publishes, so its traffic is policed (unknown senders are dropped).
   */
  setWorkload(ep: PolicyEndpoint): number {
    this.compiler.setEndpoint(ep);
    return this.publish(this.tables.enabled);
  }

  /** Forgets a workload (by `<namespace>/<name>`) and publishes. */
  removeWorkload(key: string): number {
    this.compiler.removeEndpoint(key);
    return this.publish(this.tables.enabled);
  }

  /** Brings the dataplane to `cfg`'s policy (incrementally) and publishes. Returns the generation. */
  program(cfg: PolicySource): number {
    this.compiler.sync(cfg.policy ?? EMPTY_POLICY_CONFIG, cfg.endpoints.map(policyEndpoint));
    return this.publish(hasPolicy(cfg.policy));
  }

  /** Publishes the compiler's current state (after incremental changes through `compiler`). */
  publish(enabled = true): number {
    const img = buildImage(this.compiler, this.image);
    if (img.length > this.tables.bankWords)
      throw new TableError(
        'policy-table-full',
        `policy: the compiled policy needs ${img.length} words, more than the table's ${this.tables.bankWords}; the policy in force is unchanged`,
      );
    this.imageWords = img.length;
    return this.tables.publish((bank) => bank.set(img), enabled);
  }

  /** Deny counters as `calitap stats` rows (node ip4-policy, one reason per endpoint/direction/cause). */
  counterRows(): CounterRow[] {
    return policyCounterRows(this.env());
  }

  /** Log-action hits since the last call (oldest first) and how many the ring lost meanwhile. */
  drainLog(): { lines: PolicyLogLine[]; lost: number } {
    const { records, next, lost } = this.tables.readLog(this.logNext);
    this.logNext = next;
    return { lines: records.map((r) => this.logLine(r)), lost };
  }

  private logLine(r: PolicyLogRecord): PolicyLogLine {
    const label = this.compiler.counterLabels[r.counter] ?? '';
    // labels read "<endpoint> <direction> denied by <cause>": keep endpoint and cause
    const m = /^(\S+) (\S+) denied by (.*)$/.exec(label);
    return {
      endpoint: m ? `${m[1]} ${m[2]}` : label,
      rule: m ? m[3] : '',
      proto: r.proto,
      src: formatIp4(r.src),
      dst: formatIp4(r.dst),
      sport: r.sport,
      dport: r.dport,
      sec: r.sec,
    };
  }
}
