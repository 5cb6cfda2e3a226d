// The file datastore: a multi-document YAML file of Calico v3 resources (and calitap Uplinks) served
// through the Datastore interface in Calico's etcdv3 key layout, so the daemon and the CLI treat it
// like etcd. The file is validated as a whole (the config file's checks, load.ts) and its resources
// become keys in an in-memory store; a reload (file watch or SIGHUP) applies only the difference, as
// watch events, exactly as an etcd watch would deliver them. A file that fails validation is refused
// with the one-line error and the running state stays as it was. Writes of resources (calitap apply /
// create / replace / delete with --config) rewrite the file's documents in place after validating
// the result; IPAM keys written by a daemon live in memory only. Control thread only.
import * as fs from 'node:fs';
import { Document, parseAllDocuments } from 'yaml';
import { CalitapError, ConfigError } from '../../common/errors.js';
import { loadConfigText } from '../config/load.js';
import { readDocuments, toV3 } from './documents.js';
import { toPlain } from './json.js';
import { CALITAP_PREFIX, RESOURCES_PREFIX } from './layout.js';
import { MemoryDatastore } from './memory.js';
import { decodeResource, encodeResource, keyOf, type V3Object } from './resources.js';
import type { KV } from './types.js';

export interface ReloadResult {
  changed: number;
  /** the one-line reason when the file was refused */
  error?: string;
}

function fileKey(key: string): boolean {
  return key.startsWith(RESOURCES_PREFIX) || key.startsWith(CALITAP_PREFIX);
}

export class FileDatastore extends MemoryDatastore {
  override readonly type = 'file' as const;
  private text = '';
  private watching = false;

  constructor(readonly path: string) {
    super(path);
  }

  /** Reads and validates the file; throws ConfigError (first load). */
  static open(path: string): FileDatastore {
    const ds = new FileDatastore(path);
    const r = ds.reload();
    if (r.error !== undefined) throw new ConfigError(r.error);
    return ds;
  }

  private readText(): string {
    try {
      return fs.readFileSync(this.path, 'utf8');
    } catch (e) {
      throw new ConfigError(
        `${this.path}: cannot read config file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
    }
  }

  /** The file's resources as key → stored value. */
  private parse(text: string): Map<string, string> {
    loadConfigText(text, this.path); // the whole-file checks (cross-resource ones too)
    const out = new Map<string, string>();
    for (const d of readDocuments(text, this.path)) {
      let o: V3Object;
      try {
        o = toV3(d, this.path);
      } catch (e) {
        if (e instanceof ConfigError && / unknown resource type /.test(e.message)) continue; // ignored, as load.ts does
        throw e;
      }
      out.set(keyOf(o), encodeResource(o));
    }
    return out;
  }

  /** Re-reads the file and applies the difference (puts and deletes, as watch events). */
  reload(): ReloadResult {
    let next: Map<string, string>;
    let text: string;
    try {
      text = this.readText();
      if (text === this.text) return { changed: 0 };
      next = this.parse(text);
    } catch (e) {
      if (e instanceof CalitapError) return { changed: 0, error: e.message };
      throw e;
    }
    this.text = text;
    let changed = 0;
    for (const kv of this.listSync('/').kvs) {
      if (fileKey(kv.key) && !next.has(kv.key)) {
        this.deleteSync(kv.key);
        changed++;
      }
    }
    for (const [key, value] of next) {
      if (this.getSync(key)?.value === value) continue;
      this.putSync(key, value);
      changed++;
    }
    return { changed };
  }

  /** Polls the file for changes (every `intervalMs`); `onReload` hears every reload's result. */
  watchFile(onReload: (r: ReloadResult) => void, intervalMs = 250): () => void {
    if (this.watching) throw new Error('already watching');
    this.watching = true;
    const listener = () => onReload(this.reload());
    fs.watchFile(this.path, { interval: intervalMs }, listener);
    return () => {
      fs.unwatchFile(this.path, listener);
      this.watching = false;
    };
  }

  override async create(key: string, value: string): Promise<KV> {
    const kv = await super.create(key, value);
    this.persist(key);
    return kv;
  }

  override async update(key: string, value: string, modRevision: number): Promise<KV> {
    const kv = await super.update(key, value, modRevision);
    this.persist(key);
    return kv;
  }

  override async put(key: string, value: string): Promise<KV> {
    const kv = await super.put(key, value);
    this.persist(key);
    return kv;
  }

  override async delete(key: string, modRevision?: number): Promise<void> {
    await super.delete(key, modRevision);
    this.persist(key);
  }

  /**
   * Writes a changed resource back to the file: its document replaced (or appended, or removed),
   * every other document left as written. The new text is validated first; on failure the store
   * change is undone and the one-line error thrown.
   */
  private persist(key: string): void {
    if (!fileKey(key)) return;
    const kv = this.getSync(key);
    const docs = parseAllDocuments(this.text);
    const list = Array.isArray(docs) ? docs : [];
    const parsed = readDocuments(this.text, this.path);
    const hit = parsed.find((d) => {
      try {
        return keyOf(toV3(d, this.path)) === key;
      } catch {
        return false;
      }
    });
    const plain = kv === undefined ? undefined : toPlain(stripped(decodeResource(kv)));
    const out: string[] = [];
    list.forEach((doc, i) => {
      if (hit !== undefined && hit.doc === i) {
        if (hit.item !== undefined) {
          const items = (doc.toJS() as { items: unknown[] }).items;
          if (plain === undefined) items.splice(hit.item, 1);
          else items[hit.item] = plain;
          doc.set('items', items);
          out.push(doc.toString());
        } else if (plain !== undefined) out.push(new Document(plain).toString());
        return;
      }
      if (doc.contents !== null) out.push(doc.toString());
    });
    if (hit === undefined && plain !== undefined) out.push(new Document(plain).toString());
    const text = out.map((d) => d.replace(/^---\n/, '').replace(/\n*$/, '\n')).join('---\n');
    try {
      loadConfigText(text, this.path);
    } catch (e) {
      // undo in memory; the file is untouched
      this.text = '';
      this.reload();
      throw e;
    }
    const tmp = `${this.path}.calitap-tmp`;
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, this.path);
    this.text = text;
  }
}

/** What goes back into a file: no resourceVersion, no uid/creationTimestamp we made up. */
function stripped(o: V3Object): V3Object {
  const meta = { ...o.metadata };
  delete meta.resourceVersion;
  return { ...o, metadata: meta };
}
