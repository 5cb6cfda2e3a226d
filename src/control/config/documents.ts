// YAML text → raw resources: every document of a multi-document file (and every item of a `kind: List`
// or `kind: <Kind>List`) with its apiVersion, kind, name, namespace, spec and where it came from (file
// and line, for messages). YAML errors stop loading with one ConfigError line. Control thread.
import { LineCounter, parseAllDocuments, type Document } from 'yaml';
import { ConfigError } from '../../common/errors.js';
import {
  fail,
  isObj,
  mapping,
  NO_VALUE,
  optString,
  own,
  reqString,
  typeName,
  type Obj,
  type Where,
} from './fields.js';

export interface RawResource {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
  /** metadata (labels of policy kinds and namespaces) */
  meta: Obj;
  spec: Obj;
  where: Where;
}

function lineOf(lc: LineCounter, offset: number | undefined): number {
  return offset === undefined ? 1 : lc.linePos(offset).line;
}

function rawResource(
  file: string,
  value: unknown,
  label: string,
  line: number,
  defaults: { apiVersion?: string; kind?: string },
): RawResource {
  const at: Where = { file, what: `${label} at line ${line}` };
  if (!isObj(value)) fail(at, 'document', NO_VALUE, `must be a mapping (a resource), got ${typeName(value)}`);
  const apiVersion = optString(at, value, 'apiVersion', 'apiVersion') ?? defaults.apiVersion;
  if (apiVersion === undefined) fail(at, 'apiVersion', NO_VALUE, 'required');
  const kind = optString(at, value, 'kind', 'kind') ?? defaults.kind;
  if (kind === undefined) fail(at, 'kind', NO_VALUE, 'required');
  const kindAt: Where = { file, what: `${kind} at line ${line}` };
  const meta = mapping(kindAt, value, 'metadata', 'metadata');
  const name = reqString(kindAt, meta, 'name', 'metadata.name');
  const namespace = optString(kindAt, meta, 'namespace', 'metadata.namespace');
  const where: Where = { file, what: `${kind} ${namespace ? namespace + '/' : ''}${name}` };
  const spec = mapping(where, value, 'spec', 'spec');
  return { apiVersion, kind, name, namespace, meta, spec, where };
}

export function parseDocuments(text: string, file: string): RawResource[] {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, prettyErrors: true, logLevel: 'error' });
  const list: Document[] = Array.isArray(docs) ? docs : [];
  const out: RawResource[] = [];
  list.forEach((doc, i) => {
    const err = doc.errors[0];
    if (err) {
      const pos = err.linePos?.[0];
      const msg = err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
      const loc = pos ? `line ${pos.line}, column ${pos.col}` : `document ${i + 1}`;
      throw new ConfigError(`${file}: ${loc}: YAML syntax error: ${msg}`);
    }
    const line = lineOf(lc, doc.contents?.range?.[0]);
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      throw new ConfigError(
        `${file}: document ${i + 1} at line ${line}: YAML error: ${(e as Error).message}`,
      );
    }
    if (value === null || value === undefined) return; // empty document (e.g. a trailing `---`)
    const label = `document ${i + 1}`;
    const kind = isObj(value) ? own(value, 'kind') : undefined;
    const items = isObj(value) ? own(value, 'items') : undefined;
    if (typeof kind === 'string' && /List$/.test(kind) && items !== undefined) {
      // `kind: List` (kubectl) or `kind: IPPoolList` (calicoctl get -o yaml): expand the items; items
      // without apiVersion/kind inherit the list's apiVersion and the kind named by the list.
      const at: Where = { file, what: `${kind} at line ${line}` };
      if (!Array.isArray(items)) fail(at, 'items', items, `must be a list, got ${typeName(items)}`);
      const apiVersion = own(value as Obj, 'apiVersion');
      const itemKind = kind === 'List' ? undefined : kind.slice(0, -4);
      items.forEach((item, j) => {
        const node = doc.getIn(['items', j], true) as { range?: [number, number, number] } | undefined;
        out.push(
          rawResource(file, item, `${label} items[${j}]`, lineOf(lc, node?.range?.[0] ?? undefined), {
            apiVersion: itemKind && typeof apiVersion === 'string' ? apiVersion : undefined,
            kind: itemKind,
          }),
        );
      });
      return;
    }
    out.push(rawResource(file, value, label, line, {}));
  });
  return out;
}
