// The tests' etcd: see src/lab/etcd.ts (shared with bench/datastore.bench.ts).
export { haveEtcd, NamespacedEtcd as TestEtcd } from '../../src/lab/etcd.js';
