// Choosing a datastore the way calicoctl does: `--datastore etcdv3 --etcd-endpoints URLS` or
// DATASTORE_TYPE=etcdv3 and ETCD_ENDPOINTS=http://host:2379[,...] in the environment; `--config FILE`
// (or DATASTORE_TYPE=file) is the file datastore. Flags win over the environment. Control thread.
import { UsageError } from '../../common/errors.js';
import { FileDatastore } from './file.js';
import type { Datastore } from './types.js';

export interface DatastoreFlags {
  datastore?: string;
  etcdEndpoints?: string;
  config?: string;
}

export interface DatastoreChoice {
  type: 'etcdv3' | 'file';
  endpoints?: string[];
  file?: string;
}

export function chooseDatastore(f: DatastoreFlags, env: NodeJS.ProcessEnv = process.env): DatastoreChoice {
  const type = f.datastore ?? (f.config !== undefined ? 'file' : env.DATASTORE_TYPE);
  if (type === undefined || type === '')
    throw new UsageError(
      'no datastore: give --config FILE, or --datastore etcdv3 --etcd-endpoints URLS (or DATASTORE_TYPE / ETCD_ENDPOINTS)',
    );
  if (type === 'etcdv3') {
    const text = f.etcdEndpoints ?? env.ETCD_ENDPOINTS;
    if (text === undefined || text.trim() === '')
      throw new UsageError('--datastore etcdv3: no endpoints: give --etcd-endpoints URLS or ETCD_ENDPOINTS');
    const endpoints = text
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    for (const e of endpoints)
      if (!/^https?:\/\/[^/\s]+\/?$/.test(e))
        throw new UsageError(`--etcd-endpoints ${e}: expected a URL like http://127.0.0.1:2379`);
    if (endpoints.some((e) => e.startsWith('https:')))
      throw new UsageError('--etcd-endpoints: https (TLS) endpoints are not supported yet');
    return { type, endpoints };
  }
  if (type === 'file') {
    const file = f.config ?? env.CALITAP_CONFIG;
    if (file === undefined) throw new UsageError('--datastore file: give --config FILE');
    return { type, file };
  }
  throw new UsageError(`--datastore ${type}: expected etcdv3 or file (--config FILE)`);
}

/** Opens the datastore; the etcd client (gRPC) is loaded only when etcd is used. */
export async function openDatastore(c: DatastoreChoice): Promise<Datastore> {
  if (c.type === 'etcdv3') {
    const { EtcdDatastore } = await import('./etcd.js');
    return new EtcdDatastore({ endpoints: c.endpoints! });
  }
  return FileDatastore.open(c.file!);
}
