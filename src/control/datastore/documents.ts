// Resource documents from YAML or JSON text (calicoctl's -f input and the file datastore): multi-
// document YAML, JSON (a JSON document is YAML), and lists (`kind: List`, `kind: IPPoolList`) expanded
// into their items. Each document keeps its index and line for messages. Syntax errors are one-line
// ConfigErrors naming the file and line. Control thread; pure.
import { LineCounter, parseAllDocuments } from 'yaml';
import { ConfigError } from '../../common/errors.js';
import { CALICO_KINDS, MAX_NAME_LEN, NAME_RE } from '../config/load.js';
import { POLICY_KINDS } from '../config/policy-load.js';
import { kindInfo } from './layout.js';
import { parseResource } from './model.js';
import { API_VERSION, CALITAP_API, type V3Object } from './resources.js';
import { toJson, type JsonObject } from './json.js';

export interface ResourceDoc {
  /** the document as plain data */
  obj: Record<string, unknown>;
  /** "document 2 at line 7" (or "document 2 items[0] at line 9") */
  where: string;
  /** index of the YAML document it came from */
  doc: number;
  /** set when it is an item of a list document */
  item?: number;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function readDocuments(text: string, file: string): ResourceDoc[] {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, logLevel: 'error' });
  const list = Array.isArray(docs) ? docs : [];
  const out: ResourceDoc[] = [];
  list.forEach((doc, i) => {
    const err = doc.errors[0];
    if (err) {
      const pos = err.linePos?.[0];
      const loc = pos ? `line ${pos.line}, column ${pos.col}` : `document ${i + 1}`;
      throw new ConfigError(`${file}: ${loc}: YAML syntax error: ${err.message.split('\n')[0]}`);
    }
    const line = doc.contents?.range?.[0] === undefined ? 1 : lc.linePos(doc.contents.range[0]).line;
    let v: unknown;
    try {
      v = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      throw new ConfigError(`${file}: document ${i + 1} at line ${line}: ${(e as Error).message}`);
    }
    if (v === null || v === undefined) return;
    if (!isObj(v))
      throw new ConfigError(`${file}: document ${i + 1} at line ${line}: must be a mapping (a resource)`);
    const kind = v.kind;
    if (typeof kind === 'string' && /List$/.test(kind) && Array.isArray(v.items)) {
      const itemKind = kind === 'List' ? undefined : kind.slice(0, -4);
      v.items.forEach((item: unknown, j: number) => {
        const where = `document ${i + 1} items[${j}] at line ${line}`;
        if (!isObj(item)) throw new ConfigError(`${file}: ${where}: must be a mapping (a resource)`);
        const obj = { ...item };
        if (obj.kind === undefined && itemKind !== undefined) obj.kind = itemKind;
        if (obj.apiVersion === undefined && itemKind !== undefined) obj.apiVersion = v.apiVersion;
        out.push({ obj, where, doc: i, item: j });
      });
      return;
    }
    out.push({ obj: v, where: `document ${i + 1} at line ${line}`, doc: i });
  });
  return out;
}

/** kinds the config file's checks cover (others are only checked for a valid name) */
const VALIDATED = new Set<string>([...CALICO_KINDS, 'Uplink', ...POLICY_KINDS]);

/**
 * One document as a v3 object to store, after the config file's per-resource checks. Throws a
 * one-line ConfigError `<file>: <Kind> <name>: <field> <value>: <why>`.
 */
export function toV3(d: ResourceDoc, file: string): V3Object {
  const o = d.obj;
  const at = `${file}: ${d.where}`;
  const kind = o.kind;
  const api = o.apiVersion;
  if (typeof kind !== 'string' || kind === '') throw new ConfigError(`${at}: kind: required`);
  if (typeof api !== 'string' || api === '') throw new ConfigError(`${at}: apiVersion: required`);
  const ours = api === CALITAP_API && kind === 'Uplink';
  if (!ours && (api !== API_VERSION || kindInfo(kind) === undefined))
    throw new ConfigError(`${at}: kind ${kind}: unknown resource type (${api} ${kind})`);
  const meta = isObj(o.metadata) ? o.metadata : {};
  const name = meta.name;
  if (typeof name !== 'string' || name === '')
    throw new ConfigError(`${at}: ${kind}: metadata.name: required`);
  if (!NAME_RE.test(name) || name.length > MAX_NAME_LEN)
    throw new ConfigError(
      `${file}: ${kind} ${name}: metadata.name ${name}: must be lower-case letters, digits, "-" or "." (at most 253)`,
    );
  if (VALIDATED.has(kind)) parseResource(o, file);
  const metadata: V3Object['metadata'] = { name };
  if (kindInfo(kind)?.namespaced)
    metadata.namespace = typeof meta.namespace === 'string' ? meta.namespace : 'default';
  for (const k of ['uid', 'creationTimestamp', 'resourceVersion', 'labels', 'annotations'])
    if (meta[k] !== undefined && meta[k] !== null) metadata[k] = toJson(meta[k]);
  const out: V3Object = { kind, apiVersion: api, metadata };
  out.spec = isObj(o.spec) ? (toJson(o.spec) as JsonObject) : {};
  return out;
}
