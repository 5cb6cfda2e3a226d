// calicoctl-style commands against whichever datastore is configured (--config FILE, or
// --datastore etcdv3 --etcd-endpoints URLS, or DATASTORE_TYPE / ETCD_ENDPOINTS):
//   apply|create|replace|delete -f FILE     multi-document YAML or JSON, lists expanded
//   delete KIND NAME                        one resource by name
//   get KIND [NAME] [-o yaml|json|wide]     calicoctl's columns
//   ipam show [--show-blocks]               GROUPING CIDR IPS TOTAL, IPS IN USE, IPS FREE
//   node delete NAME                        what `calicoctl delete node` does to IPAM and endpoints
// Every failure is one line naming the file or resource, the field and the value. Runs in the CLI
// process; the datastore is opened per command and closed before it returns.
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { stringify as yamlStringify } from 'yaml';
import { formatPrefix4, parsePrefix4, prefixContains } from '../common/addr.js';
import { ConfigError, DatastoreError, UsageError } from '../common/errors.js';
import { readDocuments, toV3 } from '../control/datastore/documents.js';
import { toPlain } from '../control/datastore/json.js';
import { kindFromArg, kindInfo, AFFINITY_PREFIX, parseAffinityKey } from '../control/datastore/layout.js';
import { chooseDatastore, openDatastore, type DatastoreFlags } from '../control/datastore/open.js';
import { ResourceClient, type V3Object } from '../control/datastore/resources.js';
import type { Datastore } from '../control/datastore/types.js';
import { CasIpam } from '../control/ipam/cas.js';
import { inUse } from '../control/datastore/ipam-records.js';

type Print = (s: string) => void;

export function addDatastoreOptions(c: Command): Command {
  return c
    .option('--config <file>', 'the file datastore (Calico v3 YAML)')
    .option('--datastore <type>', 'etcdv3 or file (default: DATASTORE_TYPE, or file with --config)')
    .option('--etcd-endpoints <urls>', 'etcd endpoints, comma-separated (default: ETCD_ENDPOINTS)');
}

async function withDatastore<T>(f: DatastoreFlags, fn: (ds: Datastore) => Promise<T>): Promise<T> {
  const ds = await openDatastore(chooseDatastore(f));
  try {
    return await fn(ds);
  } finally {
    await ds.close();
  }
}

function readInput(file: string): string {
  try {
    return file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(
      `${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}

/** Reads and validates every document first: nothing is written when one is invalid. */
function loadObjects(file: string): V3Object[] {
  const docs = readDocuments(readInput(file), file);
  if (docs.length === 0) throw new ConfigError(`${file}: no resources in the file`);
  return docs.map((d) => toV3(d, file));
}

function summary(verb: string, objs: V3Object[]): string {
  const counts = new Map<string, number>();
  for (const o of objs) counts.set(o.kind, (counts.get(o.kind) ?? 0) + 1);
  return [...counts].map(([k, n]) => `Successfully ${verb} ${n} '${k}' resource(s)`).join('\n');
}

export async function cmdWrite(
  verb: 'apply' | 'create' | 'replace' | 'delete',
  file: string,
  flags: DatastoreFlags,
  print: Print,
): Promise<void> {
  const objs = loadObjects(file);
  await withDatastore(flags, async (ds) => {
    const rc = new ResourceClient(ds);
    if (verb !== 'delete') await checkTiers(file, objs, rc);
    for (const o of objs) {
      if (verb === 'apply') await rc.apply(o);
      else if (verb === 'create') await rc.create(o);
      else if (verb === 'replace') await rc.replace(o);
      else await rc.delete(o.kind, o.metadata.name, o.metadata.namespace, o.metadata.resourceVersion);
    }
  });
  const past = { apply: 'applied', create: 'created', replace: 'replaced', delete: 'deleted' }[verb];
  print(summary(past, objs));
}

/** Policies name a Tier the file or the datastore has (before anything is written). */
async function checkTiers(file: string, objs: V3Object[], rc: ResourceClient): Promise<void> {
  const inFile = new Set(objs.filter((o) => o.kind === 'Tier').map((o) => o.metadata.name));
  for (const o of objs) {
    if (o.kind !== 'NetworkPolicy' && o.kind !== 'GlobalNetworkPolicy') continue;
    const tier = spec(o).tier;
    if (typeof tier !== 'string' || tier === 'default' || inFile.has(tier)) continue;
    if ((await rc.get('Tier', tier)) !== undefined) continue;
    const ns = o.kind === 'NetworkPolicy' ? `${o.metadata.namespace ?? 'default'}/` : '';
    throw new ConfigError(
      `${file}: ${o.kind} ${ns}${o.metadata.name}: spec.tier ${tier}: no Tier with this name`,
    );
  }
}

export async function cmdDeleteByName(
  kindArg: string,
  name: string,
  o: DatastoreFlags & { namespace?: string },
  print: Print,
): Promise<void> {
  const k = resolveKind(kindArg);
  await withDatastore(o, (ds) => new ResourceClient(ds).delete(k, name, o.namespace ?? 'default'));
  print(`Successfully deleted 1 '${k}' resource(s)`);
}

function resolveKind(arg: string): string {
  if (/^uplinks?$/i.test(arg)) return 'Uplink';
  const k = kindFromArg(arg);
  if (k === undefined) throw new UsageError(`get ${arg}: unknown resource type`);
  return k.kind;
}

/** A table as calicoctl prints it (tabwriter: columns padded by 3 spaces, no borders). */
export function columns(headers: string[], rows: string[][]): string {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [headers, ...rows]
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i] + 3)))
        .join('')
        .trimEnd(),
    )
    .join('\n');
}

const s = (v: unknown): string => (v === undefined || v === null ? '' : String(v));

function spec(o: V3Object): Record<string, unknown> {
  return (toPlain(o.spec as never) ?? {}) as Record<string, unknown>;
}

/** calicoctl's `get` columns per kind (ps and wide). */
function rowsFor(kind: string, items: V3Object[], wide: boolean, allNs: boolean): string {
  const ns = (o: V3Object) => s(o.metadata.namespace);
  switch (kind) {
    case 'IPPool':
      return wide
        ? columns(
            ['NAME', 'CIDR', 'NAT', 'IPIPMODE', 'VXLANMODE', 'DISABLED', 'DISABLEBGPEXPORT', 'SELECTOR'],
            items.map((o) => {
              const p = spec(o);
              return [
                o.metadata.name,
                s(p.cidr),
                String(p.natOutgoing === true),
                s(p.ipipMode) || 'Never',
                s(p.vxlanMode) || 'Never',
                String(p.disabled === true),
                String(p.disableBGPExport === true),
                s(p.nodeSelector) || 'all()',
              ];
            }),
          )
        : columns(
            ['NAME', 'CIDR', 'SELECTOR'],
            items.map((o) => [o.metadata.name, s(spec(o).cidr), s(spec(o).nodeSelector) || 'all()']),
          );
    case 'Node':
      return wide
        ? columns(
            ['NAME', 'ASN', 'IPV4', 'IPV6'],
            items.map((o) => {
              const bgp = (spec(o).bgp ?? {}) as Record<string, unknown>;
              return [
                o.metadata.name,
                bgp.asNumber === undefined ? '(64512)' : s(bgp.asNumber),
                s(bgp.ipv4Address),
                s(bgp.ipv6Address),
              ];
            }),
          )
        : columns(
            ['NAME'],
            items.map((o) => [o.metadata.name]),
          );
    case 'WorkloadEndpoint': {
      const head = wide
        ? ['NAME', 'WORKLOAD', 'NODE', 'NETWORKS', 'INTERFACE', 'PROFILES', 'NATS']
        : ['WORKLOAD', 'NODE', 'NETWORKS', 'INTERFACE'];
      const rows = items.map((o) => {
        const p = spec(o);
        const nets = Array.isArray(p.ipNetworks) ? p.ipNetworks.join(',') : '';
        const base = [s(p.workload), s(p.node), nets, s(p.interfaceName)];
        return wide
          ? [o.metadata.name, ...base, Array.isArray(p.profiles) ? p.profiles.join(',') : '', '']
          : base;
      });
      return allNs
        ? columns(
            ['NAMESPACE', ...head],
            rows.map((r, i) => [ns(items[i]), ...r]),
          )
        : columns(head, rows);
    }
    case 'BGPPeer':
      return columns(
        ['NAME', 'PEERIP', 'NODE', 'ASN'],
        items.map((o) => [
          o.metadata.name,
          s(spec(o).peerIP),
          s(spec(o).node) || '(global)',
          s(spec(o).asNumber),
        ]),
      );
    default: {
      const named = kindInfo(kind)?.namespaced && allNs;
      return named
        ? columns(
            ['NAMESPACE', 'NAME'],
            items.map((o) => [ns(o), o.metadata.name]),
          )
        : columns(
            ['NAME'],
            items.map((o) => [o.metadata.name]),
          );
    }
  }
}

export interface GetOptions extends DatastoreFlags {
  output?: string;
  namespace?: string;
  allNamespaces?: boolean;
}

export async function cmdGet(
  kindArg: string,
  name: string | undefined,
  o: GetOptions,
  print: Print,
): Promise<void> {
  const kind = resolveKind(kindArg);
  const out = o.output ?? 'ps';
  if (!['ps', 'wide', 'yaml', 'json'].includes(out))
    throw new UsageError(`-o ${out}: expected yaml, json or wide`);
  const namespaced = kindInfo(kind)?.namespaced === true;
  const ns = namespaced && !o.allNamespaces ? (o.namespace ?? 'default') : undefined;
  const { items, bad, revision } = await withDatastore(o, async (ds) => {
    const rc = new ResourceClient(ds);
    if (name !== undefined) {
      const one = await rc.get(kind, name, ns ?? 'default');
      if (one === undefined)
        throw new DatastoreError(
          'datastore-not-found',
          `${kind} ${namespaced ? `${ns ?? 'default'}/` : ''}${name}: does not exist`,
        );
      return { items: [one], bad: [] as string[], revision: '' };
    }
    const l = await rc.list(kind, ns);
    return { ...l, revision: String(l.revision) };
  });
  for (const b of bad) process.stderr.write(`calitap: skipped bad value: ${b}\n`);
  if (out === 'yaml' || out === 'json') {
    const plain =
      name !== undefined
        ? toPlain(items[0])
        : {
            apiVersion: 'projectcalico.org/v3',
            items: items.map((i) => toPlain(i)),
            kind: `${kind}List`,
            metadata: { resourceVersion: revision },
          };
    print(out === 'json' ? JSON.stringify(plain, null, 2) : yamlStringify(plain).trimEnd());
    return;
  }
  print(rowsFor(kind, items, out === 'wide', namespaced && o.allNamespaces === true));
}

function pct(n: number, total: number): string {
  return `${n} (${total === 0 ? 0 : Math.round((100 * n) / total)}%)`;
}

/** `calicoctl ipam show` table (with borders, as calicoctl draws this one). */
function boxed(headers: string[], rows: string[][]): string {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = '+' + w.map((x) => '-'.repeat(x + 2)).join('+') + '+';
  const fmt = (r: string[]) => '| ' + r.map((c, i) => c.padEnd(w[i])).join(' | ') + ' |';
  return [line, fmt(headers), line, ...rows.map(fmt), line].join('\n');
}

export async function cmdIpamShow(o: DatastoreFlags & { showBlocks?: boolean }, print: Print): Promise<void> {
  const rows = await withDatastore(o, async (ds) => {
    const pools = (await new ResourceClient(ds).list('IPPool')).items;
    const blocks = await new CasIpam(ds).blocks();
    const rows: string[][] = [];
    for (const p of pools) {
      const cidr = parsePrefix4(s(spec(p).cidr), false);
      if (cidr === null || s(spec(p).cidr).includes(':')) continue;
      const total = 2 ** (32 - cidr.len);
      const mine = blocks.filter(({ block }) => prefixContains(cidr, block.cidr.addr));
      const used = mine.reduce((n, { block }) => n + inUse(block), 0);
      rows.push(['IP Pool', formatPrefix4(cidr), String(total), pct(used, total), pct(total - used, total)]);
      if (o.showBlocks)
        for (const { block } of mine) {
          const size = 2 ** (32 - block.cidr.len);
          const u = inUse(block);
          rows.push(['Block', formatPrefix4(block.cidr), String(size), pct(u, size), pct(size - u, size)]);
        }
    }
    return rows;
  });
  print(boxed(['GROUPING', 'CIDR', 'IPS TOTAL', 'IPS IN USE', 'IPS FREE'], rows));
}

/**
 * `calicoctl delete node`: the node's addresses (workloads, tunnels, borrowed), its block
 * affinities and empty blocks, its WorkloadEndpoints, then the Node itself.
 */
export async function cmdNodeDelete(name: string, o: DatastoreFlags, print: Print): Promise<void> {
  const r = await withDatastore(o, async (ds) => {
    const rc = new ResourceClient(ds);
    const node = await rc.get('Node', name);
    if (node === undefined) throw new DatastoreError('datastore-not-found', `Node ${name}: does not exist`);
    const released = await new CasIpam(ds).releaseHost(name);
    let weps = 0;
    for (const w of (await rc.list('WorkloadEndpoint')).items) {
      if (spec(w).node !== name) continue;
      await rc.delete('WorkloadEndpoint', w.metadata.name, w.metadata.namespace).catch(() => undefined);
      weps++;
    }
    // affinities left in other states (pending claims)
    for (const kv of (await ds.list(`${AFFINITY_PREFIX}${name}/`)).kvs)
      if (parseAffinityKey(kv.key)) await ds.delete(kv.key).catch(() => undefined);
    for (const u of (await rc.list('Uplink')).items)
      if (u.metadata.name === name) await rc.delete('Uplink', name).catch(() => undefined);
    await rc.delete('Node', name);
    return { ...released, weps };
  });
  print(
    `Successfully deleted 1 'Node' resource(s) (released ${r.addresses} address(es), ${r.blocks} block(s), ${r.weps} WorkloadEndpoint(s))`,
  );
}

/** Registers the commands on the program (main.ts). */
export function registerResourceCommands(program: Command, print: Print): void {
  for (const verb of ['apply', 'create', 'replace'] as const) {
    addDatastoreOptions(
      program
        .command(verb)
        .description(`${verb} resources from a file (calicoctl ${verb} -f)`)
        .requiredOption('-f, --filename <file>', 'YAML or JSON, multi-document ("-" for stdin)'),
    ).action((o) => cmdWrite(verb, o.filename, o, print));
  }
  addDatastoreOptions(
    program
      .command('delete')
      .description('delete resources from a file (-f) or by kind and name (calicoctl delete)')
      .argument('[kind]', 'resource kind, e.g. ippool')
      .argument('[name]', 'resource name')
      .option('-f, --filename <file>', 'YAML or JSON, multi-document')
      .option('-n, --namespace <ns>', 'namespace of namespaced kinds', 'default'),
  ).action((kind: string | undefined, name: string | undefined, o) => {
    if (o.filename !== undefined) return cmdWrite('delete', o.filename, o, print);
    if (kind === undefined || name === undefined) throw new UsageError('delete: give -f FILE or KIND NAME');
    return cmdDeleteByName(kind, name, o, print);
  });
  addDatastoreOptions(
    program
      .command('get')
      .description('show resources (calicoctl get)')
      .argument('<kind>', 'ippool, node, workloadendpoint, bgppeer, felixconfiguration, ...')
      .argument('[name]', 'one resource')
      .option('-o, --output <format>', 'yaml, json or wide')
      .option('-n, --namespace <ns>', 'namespace of namespaced kinds')
      .option('-A, --all-namespaces', 'every namespace'),
  ).action((kind: string, name: string | undefined, o) => cmdGet(kind, name, o, print));
  const ipam = program.command('ipam').description('IP address management (calicoctl ipam)');
  addDatastoreOptions(ipam.command('show').option('--show-blocks', 'one row per block too')).action((o) =>
    cmdIpamShow(o, print),
  );
  const node = program.command('node').description('cluster nodes (calicoctl node / delete node)');
  addDatastoreOptions(node.command('delete').argument('<name>', 'node name')).action((name: string, o) =>
    cmdNodeDelete(name, o, print),
  );
}
