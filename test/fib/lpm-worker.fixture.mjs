// Worker side of lpm.worker.test.ts: attaches to the table the main thread writes and looks up a fixed
// set of probe addresses in a loop, checking every result against the expected values of the states
// the table may be in while the batch ran.
//
// It loads the real module: the test transpiles src/dataplane/tables/lpm.ts and its imports to a
// temporary directory (test/tables/transpile.ts) and passes the module's URL in workerData, so the test
// needs no prior build and always exercises the current source.
//
// workerData: { moduleUrl, shared (Lpm4Shared), probes (SAB u32[nProbes]), expected (SAB
// u32[(nOps + 1) * nProbes], row k = results after k operations), nOps, sync (SAB i32: [0] operations
// completed, [1] stop flag, [2] batches finished) }.
import { parentPort, workerData } from 'node:worker_threads';

const { moduleUrl, shared, nOps } = workerData;
const { Lpm4, lpmLookup } = await import(moduleUrl);
const probes = new Uint32Array(workerData.probes);
const expected = new Uint32Array(workerData.expected);
const sync = new Int32Array(workerData.sync);
const nProbes = probes.length;

const lpm = Lpm4.attach(shared);
const slot = lpm.registerReader();
const { tbl24, tbl8 } = lpm;

let batches = 0;
let batchesDuringWrites = 0;
let lookups = 0;
const violations = [];
parentPort.postMessage({ type: 'ready' });

while (Atomics.load(sync, 1) === 0) {
  const before = Atomics.load(sync, 0);
  const got = new Array(nProbes);
  for (let i = 0; i < nProbes; i++) {
    // alternate the free function and the method: both are the hot path
    got[i] = (i & 1) === 0 ? lpmLookup(tbl24, tbl8, probes[i]) : lpm.lookup(probes[i]);
  }
  const after = Atomics.load(sync, 0);
  lpm.quiescent(slot); // no lookup in progress: the writer may reuse groups freed before this point
  lookups += nProbes;
  batches++;
  Atomics.add(sync, 2, 1);
  if (before < nOps) batchesDuringWrites++;
  // the table was in state `before` .. `after`, possibly part-way to `after + 1`
  const last = Math.min(after + 1, nOps);
  for (let i = 0; i < nProbes; i++) {
    let ok = false;
    for (let k = before; k <= last && !ok; k++) ok = expected[k * nProbes + i] === got[i];
    if (!ok && violations.length < 10) {
      const allowed = [];
      for (let k = before; k <= last; k++) allowed.push(expected[k * nProbes + i]);
      violations.push({ probe: probes[i], got: got[i], states: [before, last], allowed });
    }
  }
}
lpm.unregisterReader(slot);
parentPort.postMessage({ type: 'done', batches, batchesDuringWrites, lookups, violations });
