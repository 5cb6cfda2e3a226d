// The shared policy tables: generation banks (a publish writes the idle bank and flips), the
// reader's seqlock (an evaluation that overlapped a rewrite of its bank is retried, never trusted),
// refusal of an image larger than a bank (the generation in force stays), deny counters, the Log
// ring (oldest overwritten, losses counted), attach checks; and the evaluator's step bound on a
// garbage bank (returns, never spins).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CalitapError } from '../../src/common/errors.js';
import { loadConfigText } from '../../src/control/config/load.js';
import { PolicyProgrammer } from '../../src/control/policy/programmer.js';
import { C_ACTIVE, C_SEQ, PolicyTables } from '../../src/dataplane/tables/policy/tables.js';
import {
  PolicyEval,
  PolicyPacket,
  V_ALLOW,
  V_DENY,
  V_NO_ENDPOINT,
  V_TORN,
} from '../../src/dataplane/tables/policy/eval.js';
import { attachPolicy } from '../../src/dataplane/features/policy/nodes.js';
import { H_MAX_STEPS } from '../../src/dataplane/tables/policy/layout.js';
import { API, baseYaml, DB } from './helpers.js';
import { ip } from '../dataplane/frames.js';

const DENY_DB = `
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: { name: db-closed }
spec: { selector: role == 'db', types: [Ingress] }
`;

function packet(): PolicyPacket {
  const p = new PolicyPacket();
  p.proto = 6;
  p.src = ip(API.ip);
  p.dst = ip(DB.ip);
  p.sport = 40000;
  p.dport = 5432;
  return p;
}

/** Evaluates like the ip4-policy node: seqlock read of the active bank. */
function evaluate(t: PolicyTables, ev: PolicyEval, pk: PolicyPacket, hook?: () => void): number {
  for (let tries = 0; tries < 4; tries++) {
    const a = Atomics.load(t.ctl, C_ACTIVE);
    const seq = Atomics.load(t.ctl, C_SEQ + a);
    if (seq & 1) continue;
    const v = ev.decide(t.banks[a], pk, true, true);
    hook?.();
    if (v !== V_TORN && Atomics.load(t.ctl, C_SEQ + a) === seq) return v;
  }
  return V_TORN;
}

describe('policy tables', () => {
  const cfgOpen = loadConfigText(
    baseYaml() + DENY_DB.replace('types: [Ingress]', 'types: [Egress]'),
    'a.yaml',
  );
  const cfgClosed = loadConfigText(baseYaml() + DENY_DB, 'b.yaml');

  it('publishes generations into alternate banks', () => {
    const p = new PolicyProgrammer('node-a', { bankWords: 1 << 16 });
    const ev = new PolicyEval({ logHit: () => {} });
    p.program(cfgOpen);
    expect(p.tables.generation).toBe(1);
    expect(Atomics.load(p.tables.ctl, C_ACTIVE)).toBe(1);
    expect(evaluate(p.tables, ev, packet())).toBe(V_ALLOW);
    p.program(cfgClosed);
    expect(p.tables.generation).toBe(2);
    expect(Atomics.load(p.tables.ctl, C_ACTIVE)).toBe(0);
    expect(evaluate(p.tables, ev, packet())).toBe(V_DENY);
    expect(p.tables.enabled).toBe(true);
  });

  it('retries an evaluation a publish overlapped, and never reports its result', () => {
    const p = new PolicyProgrammer('node-a', { bankWords: 1 << 16 });
    const ev = new PolicyEval({ logHit: () => {} });
    p.program(cfgOpen);
    p.program(cfgOpen);
    // while the first try reads bank X, two publishes happen: the second rewrites X
    let calls = 0;
    const v = evaluate(p.tables, ev, packet(), () => {
      if (calls++ === 0) {
        p.program(cfgClosed);
        p.program(cfgClosed);
      }
    });
    expect(calls).toBe(2);
    expect(v).toBe(V_DENY);
    // a reader that saw an odd sequence (a publish in progress) goes to the other bank
    const a = Atomics.load(p.tables.ctl, C_ACTIVE);
    Atomics.add(p.tables.ctl, C_SEQ + a, 1);
    expect(evaluate(p.tables, ev, packet())).toBe(V_TORN);
    Atomics.add(p.tables.ctl, C_SEQ + a, 1);
    expect(evaluate(p.tables, ev, packet())).toBe(V_DENY);
  });

  it('refuses an image larger than a bank as a whole', () => {
    const p = new PolicyProgrammer('node-a', { bankWords: 1 << 13 });
    p.program(cfgClosed);
    const many = Array.from(
      { length: 400 },
      (_, k) => `
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: { name: p${k} }
spec:
  selector: all()
  ingress: [{ action: Allow, source: { selector: "app == 'a${k}'", nets: [10.${k & 255}.0.0/16, 10.1.0.0/16, 10.2.0.0/16] } }]`,
    ).join('');
    const gen = p.tables.generation;
    let err: unknown;
    try {
      p.program(loadConfigText(baseYaml() + many, 'c.yaml'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CalitapError);
    expect((err as CalitapError).code).toBe('policy-table-full');
    expect(p.tables.generation).toBe(gen);
    expect(evaluate(p.tables, new PolicyEval({ logHit: () => {} }), packet())).toBe(V_DENY);
  });

  it('keeps a ring of Log records, counting what it lost', () => {
    const t = PolicyTables.create({ bankWords: 1024, logSlots: 4 });
    for (let k = 0; k < 6; k++) t.logRecord(k, 6, 1, 2, 3, 4, 100 + k, 0);
    const r = t.readLog(0);
    expect(r.records.map((x) => x.counter)).toEqual([2, 3, 4, 5]);
    expect(r.lost).toBe(2);
    expect(r.next).toBe(6);
    t.logRecord(9, 17, 0xc0000201, 2, 53, 5353, 7, (3 << 8) | 1);
    expect(t.readLog(6).records).toEqual([
      {
        seq: 6,
        counter: 9,
        proto: 17,
        src: 0xc0000201,
        dst: 2,
        sport: 53,
        dport: 5353,
        sec: 7,
        icmpType: 3,
        icmpCode: 1,
      },
    ]);
    t.countDeny(5);
    t.countDeny(1 << 30); // out of range: "other"
    expect([t.counters[0], t.counters[5]]).toEqual([1, 1]);
  });

  it('attaches as a worker does, and follows workloads the daemon adds and removes', () => {
    const p = new PolicyProgrammer('node-a', { bankWords: 1 << 16 });
    p.program(cfgClosed);
    const env = attachPolicy(structuredClone(p.shared()));
    const ev = new PolicyEval({ logHit: () => {} });
    expect(evaluate(env.tables, ev, packet())).toBe(V_DENY);
    const pk = packet();
    pk.src = ip('10.65.0.9');
    expect(ev.decide(env.tables.banks[Atomics.load(env.tables.ctl, C_ACTIVE)], pk, true, true)).toBe(
      V_NO_ENDPOINT,
    );
    p.setWorkload({
      key: 'shop/new',
      namespace: 'shop',
      node: 'node-a',
      ipNetworks: [{ addr: ip('10.65.0.9'), len: 32 }],
      labels: {},
      ports: [],
    });
    expect(evaluate(env.tables, ev, pk)).toBe(V_DENY); // db is closed to it too
    p.removeWorkload('shop/new');
    expect(ev.decide(env.tables.banks[Atomics.load(env.tables.ctl, C_ACTIVE)], pk, true, true)).toBe(
      V_NO_ENDPOINT,
    );
  });

  it('refuses to attach to something else', () => {
    expect(() => PolicyTables.attach({} as never)).toThrow(TypeError);
    const t = PolicyTables.create({ bankWords: 64 });
    expect(PolicyTables.attach(t.shared).banks[0].length).toBe(64);
  });

  it('evaluates a garbage bank without spinning: every result is one of the verdicts', () => {
    const ev = new PolicyEval({ logHit: () => {} });
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: -5, max: 200 }), fc.integer()), {
          minLength: 64,
          maxLength: 256,
        }),
        fc.nat(200),
        (words, prog) => {
          const w = Int32Array.from(words);
          w[H_MAX_STEPS] = 1000;
          const v = ev.run(w, prog, packet(), words[0] % 4, words[1] % 4);
          expect([V_ALLOW, V_DENY, V_TORN]).toContain(v);
          expect(typeof ev.endpoint(w, 0x0a410003)).toBe('number');
        },
      ),
      { seed: 1141, numRuns: 3000 },
    );
  });
});
