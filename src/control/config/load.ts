// Config loading: Calico v3 resources (plus our `calitap/v1 Uplink`) from multi-document YAML into the
// typed ClusterConfig model (types.ts). Runs once on the main (control) thread at start-up or reload; it
// owns nothing after it returns. Every problem stops loading with one ConfigError whose message is a
// single line: `<file>: <Kind> <name>: <field path> <value>: <reason>`. Field names and defaults follow
// Calico's API (projectcalico/calico api/pkg/apis/projectcalico/v3 and libcalico-go's v3 validator).
// Unknown fields are ignored; unknown kinds are recorded in `ignored` (the CLI lists them).
//
// The work is split by concern: documents.ts (YAML → raw resources), fields.ts (typed field readers and
// the error format), kinds.ts (one converter per kind), cross-check.ts (checks across resources).
import { readFileSync } from 'node:fs';
import { ConfigError } from '../../common/errors.js';
import { emptyClusterConfig, FELIX_DEFAULTS, type ClusterConfig, type IgnoredResource } from './types.js';
import { parseDocuments } from './documents.js';
import { fail, type Where } from './fields.js';
import {
  toAffinity,
  toBgpConfig,
  toEndpoint,
  toFelix,
  toNode,
  toPeer,
  toPool,
  toUplink,
  type Ignore,
} from './kinds.js';
import { crossCheck } from './cross-check.js';
import { endpointPolicyFields, isPolicyKind, policyKindNamespaced, PolicyLoader } from './policy-load.js';

export { MAX_MTU, MIN_TUNNEL_MTU, MIN_UPLINK_MTU, vtepMacForNode } from './kinds.js';

export const CALICO_API_VERSION = 'projectcalico.org/v3';
export const CALITAP_API_VERSION = 'calitap/v1';

/** the Calico v3 kinds that make routes (policy kinds: policy-load.ts) */
export const CALICO_KINDS: ReadonlySet<string> = new Set([
  'IPPool',
  'Node',
  'BlockAffinity',
  'WorkloadEndpoint',
  'FelixConfiguration',
  'BGPConfiguration',
  'BGPPeer',
]);

/** Kubernetes/Calico resource names: lower-case alphanumerics, '-' and '.', at most 253 characters. */
export const NAME_RE = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
/** Kubernetes' limit on a resource name (DNS-1123 subdomain). */
export const MAX_NAME_LEN = 253;

export function loadConfigFile(path: string): ClusterConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ConfigError(`${path}: cannot read config file: ${e.code ?? e.message}`);
  }
  return loadConfigText(text, path);
}

export function loadConfigText(text: string, sourceName: string): ClusterConfig {
  const file = sourceName;
  if (typeof text !== 'string') throw new ConfigError(`${file}: config is not text`);
  const raws = parseDocuments(text, file);

  const cfg: ClusterConfig = emptyClusterConfig(sourceName);
  const ignored: IgnoredResource[] = cfg.ignored;
  const ignore: Ignore = (r, reason) => ignored.push({ kind: r.kind, name: r.name, reason });

  // Per-resource validation, in document order.
  const policy = new PolicyLoader();
  const seenNames = new Map<string, Set<string>>();
  const whereOf = new Map<object, Where>();
  for (const r of raws) {
    const known =
      (r.apiVersion === CALICO_API_VERSION && CALICO_KINDS.has(r.kind)) ||
      (r.apiVersion === CALITAP_API_VERSION && r.kind === 'Uplink') ||
      isPolicyKind(r.apiVersion, r.kind);
    if (!known) {
      ignore(r, `unknown kind (${r.apiVersion} ${r.kind})`);
      continue;
    }
    if (!NAME_RE.test(r.name) || r.name.length > MAX_NAME_LEN)
      fail(
        r.where,
        'metadata.name',
        r.name,
        `must be lower-case letters, digits, "-" or "." (at most ${MAX_NAME_LEN})`,
      );
    // WorkloadEndpoints and NetworkPolicies are namespaced in Calico; the other kinds here are cluster-scoped.
    const key =
      r.kind === 'WorkloadEndpoint' || policyKindNamespaced(r.kind)
        ? `${r.namespace ?? 'default'}/${r.name}`
        : r.name;
    const names = seenNames.get(r.kind) ?? new Set<string>();
    seenNames.set(r.kind, names);
    if (names.has(key)) fail(r.where, 'metadata.name', r.name, `duplicate ${r.kind} name`);
    names.add(key);

    switch (r.kind) {
      case 'IPPool': {
        const p = toPool(r, ignore);
        if (p) {
          cfg.pools.push(p);
          whereOf.set(p, r.where);
        }
        break;
      }
      case 'Node': {
        const n = toNode(r);
        cfg.nodes.set(n.name, n);
        whereOf.set(n, r.where);
        break;
      }
      case 'BlockAffinity': {
        const a = toAffinity(r, ignore);
        if (a) {
          cfg.affinities.push(a);
          whereOf.set(a, r.where);
        }
        break;
      }
      case 'WorkloadEndpoint': {
        const e = { ...toEndpoint(r), ...endpointPolicyFields(r) };
        cfg.endpoints.push(e);
        whereOf.set(e, r.where);
        break;
      }
      case 'FelixConfiguration': {
        // Felix reads the global `default` and the per-node `node.<nodename>` resources; a node-specific
        // field overrides the global one (felix/config: DatastorePerHost > DatastoreGlobal).
        const f = toFelix(r);
        if (r.name === 'default') cfg.felix = { ...FELIX_DEFAULTS, ...f };
        else if (r.name.startsWith('node.') && r.name.length > 5)
          cfg.felixNodeOverrides.set(r.name.slice(5), f);
        else ignore(r, 'Felix only reads FelixConfiguration "default" and "node.<nodename>"');
        break;
      }
      case 'BGPConfiguration': {
        const b = toBgpConfig(r);
        if (r.name === 'default') cfg.bgp = b;
        else ignore(r, 'only BGPConfiguration "default" is used');
        break;
      }
      case 'BGPPeer': {
        const p = toPeer(r, ignore);
        if (p) {
          cfg.peers.push(p);
          whereOf.set(p, r.where);
        }
        break;
      }
      case 'Uplink': {
        const u = toUplink(r);
        cfg.uplinks.set(u.node, u);
        whereOf.set(u, r.where);
        break;
      }
      default:
        policy.add(r); // NetworkPolicy, GlobalNetworkPolicy, Profile, Tier, Namespace (policy-load.ts)
    }
  }

  crossCheck(cfg, (o) => whereOf.get(o) as Where);
  const pol = policy.finish();
  if (pol) cfg.policy = pol;
  return cfg;
}
