import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { emptyCaps } from '../../src/control/bgp/caps.js';
import {
  decodeMessage,
  encodeKeepalive,
  encodeNotification,
  encodeOpen,
  encodeRouteRefresh,
  encodeUpdate,
} from '../../src/control/bgp/codec.js';
import { BgpFramer } from '../../src/control/bgp/framer.js';
import type { CodecOptions, PathAttrs } from '../../src/control/bgp/types.js';
import { maskOf } from '../../src/common/addr.js';

const prefixArb = fc
  .record({ addr: fc.nat({ max: 0xffffffff }), len: fc.integer({ min: 0, max: 32 }) })
  .map(({ addr, len }) => ({ addr: (addr & maskOf(len)) >>> 0, len }));

const u32 = fc.nat({ max: 0xffffffff });
const unicast = fc
  .tuple(fc.integer({ min: 1, max: 223 }), fc.nat({ max: 0xffffff }))
  .map(([a, b]) => ((a << 24) | b) >>> 0);

function attrsArb(ibgp: boolean, confed: boolean): fc.Arbitrary<PathAttrs> {
  const segType = confed ? fc.integer({ min: 1, max: 4 }) : fc.integer({ min: 1, max: 2 });
  return fc.record(
    {
      origin: fc.integer({ min: 0, max: 2 }),
      asPath: fc.array(fc.record({ type: segType, asns: fc.array(u32, { minLength: 1, maxLength: 8 }) }), {
        maxLength: 3,
      }),
      nextHop: unicast,
      med: u32,
      localPref: ibgp ? u32 : fc.constant(undefined),
      atomicAggregate: fc.constant(true),
      communities: fc.array(u32, { minLength: 1, maxLength: 5 }),
      extCommunities: fc.uint8Array({ minLength: 8, maxLength: 8 }),
      largeCommunities: fc.array(u32, { minLength: 3, maxLength: 3 }),
      originatorId: ibgp ? u32 : fc.constant(undefined),
      clusterList: ibgp ? fc.array(u32, { minLength: 1, maxLength: 4 }) : fc.constant(undefined),
      unknown: fc
        .uniqueArray(fc.integer({ min: 100, max: 250 }), { minLength: 1, maxLength: 2 })
        .map((codes) => codes.map((code) => ({ flags: 0xe0, code, value: Uint8Array.of(code, 1, 2) }))),
    },
    { requiredKeys: ['origin', 'asPath', 'nextHop'] },
  ) as fc.Arbitrary<PathAttrs>;
}

function strip<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

describe('bgp codec: property round trips (fast-check)', () => {
  for (const opts of [
    { as4: true, ibgp: true },
    { as4: true, ibgp: false },
  ] as CodecOptions[]) {
    it(`UPDATE encode → decode is the identity (as4=${opts.as4}, ibgp=${opts.ibgp})`, () => {
      fc.assert(
        fc.property(
          attrsArb(opts.ibgp, true),
          fc.array(prefixArb, { maxLength: 20 }),
          fc.array(prefixArb, { maxLength: 20 }),
          (attrs, nlri, withdrawn) => {
            const bytes = encodeUpdate({ attrs, nlri, withdrawn }, opts);
            const d = decodeMessage(bytes, opts);
            expect(d.ok).toBe(true);
            if (!d.ok || d.msg.type !== 'update') return;
            expect(d.msg.attrs).toEqual(strip(attrs));
            expect(d.msg.nlri).toEqual(nlri);
            expect(d.msg.withdrawn).toEqual(withdrawn);
            expect(d.msg.treatAsWithdraw).toBeUndefined();
          },
        ),
        { numRuns: 300 },
      );
    });
  }

  it('2-octet session: AS_TRANS + AS4_PATH reproduce every 4-octet path', () => {
    const opts = { as4: false, ibgp: true };
    fc.assert(
      fc.property(attrsArb(true, false), (attrs) => {
        const d = decodeMessage(encodeUpdate({ attrs, nlri: [{ addr: 0x0a000000, len: 8 }] }, opts), opts);
        expect(d.ok && d.msg.type === 'update' && d.msg.attrs?.asPath).toEqual(attrs.asPath);
      }),
      { numRuns: 300 },
    );
  });

  it('OPEN encode → decode keeps every field', () => {
    fc.assert(
      fc.property(u32, fc.integer({ min: 0, max: 65535 }), u32, fc.boolean(), (asn, hold, id, rr) => {
        const caps = { ...emptyCaps(), multiprotocol: [{ afi: 1, safi: 1 }], routeRefresh: rr, as4: asn };
        const d = decodeMessage(encodeOpen({ asn, holdTime: hold, bgpId: id, caps }), {
          as4: true,
          ibgp: true,
        });
        expect(d.ok && d.msg).toMatchObject({ type: 'open', holdTime: hold, bgpId: id, caps });
      }),
    );
  });
});

describe('bgp codec: fuzz (random bytes and mutations only ever yield a message or a NOTIFICATION)', () => {
  const seeds = [
    encodeKeepalive(),
    encodeRouteRefresh(),
    encodeNotification(6, 2, Uint8Array.of(3, 0x61, 0x62, 0x63)),
    encodeOpen({
      asn: 64512,
      holdTime: 90,
      bgpId: 1,
      caps: {
        ...emptyCaps(),
        multiprotocol: [{ afi: 1, safi: 1 }],
        routeRefresh: true,
        as4: 64512,
        gracefulRestart: {
          restartTime: 120,
          restarting: false,
          notification: false,
          afis: [{ afi: 1, safi: 1, forwarding: true }],
        },
      },
    }),
    encodeUpdate(
      {
        attrs: {
          origin: 0,
          asPath: [{ type: 2, asns: [65001, 65002] }],
          nextHop: 0x0a000001,
          localPref: 100,
          communities: [1, 2],
          clusterList: [7],
          originatorId: 9,
        },
        nlri: [
          { addr: 0x0a410000, len: 26 },
          { addr: 0x0a410040, len: 26 },
        ],
        withdrawn: [{ addr: 0x0a000000, len: 8 }],
      },
      { as4: true, ibgp: true },
    ),
    encodeUpdate(
      {
        attrs: { origin: 0, asPath: [], nextHop: null },
        mpReach: { nextHop: 0x0a000001, nlri: [{ addr: 0x0a410000, len: 26 }] },
        mpUnreach: [{ addr: 0x0b000000, len: 8 }],
      },
      { as4: false, ibgp: false },
    ),
  ];

  function check(bytes: Uint8Array, opts: CodecOptions): void {
    const d = decodeMessage(bytes, opts);
    if (!d.ok) {
      expect(d.error.code).toBeGreaterThanOrEqual(1);
      expect(d.error.code).toBeLessThanOrEqual(7);
      expect(d.error.data).toBeInstanceOf(Uint8Array);
    }
    const f = new BgpFramer();
    const out = f.push(bytes);
    for (const m of out) decodeMessage(m, opts);
  }

  it('mutated valid messages (byte flips, truncation, extension, length lies)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...seeds),
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 6 }),
        fc.nat(),
        fc.uint8Array({ maxLength: 40 }),
        fc.boolean(),
        fc.boolean(),
        (seed, flips, cut, extra, as4, ibgp) => {
          let b = Uint8Array.from(seed);
          for (const [pos, val] of flips) b[19 + (pos % Math.max(1, b.length - 19))] = val;
          if (cut % 3 === 0) b = b.slice(0, 19 + (cut % Math.max(1, b.length - 18)));
          if (cut % 3 === 1) {
            const n = new Uint8Array(b.length + extra.length);
            n.set(b);
            n.set(extra, b.length);
            b = n;
          }
          // keep the header length consistent about half the time so deep paths are reached
          if (cut % 2 === 0 && b.length <= 4096) {
            b[16] = b.length >> 8;
            b[17] = b.length & 255;
          }
          check(b, { as4, ibgp });
        },
      ),
      { numRuns: 20000 },
    );
  });

  it('random bytes behind a valid header', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.boolean(),
        (type, body, as4) => {
          const b = new Uint8Array(19 + body.length).fill(0xff);
          b[16] = b.length >> 8;
          b[17] = b.length & 255;
          b[18] = type;
          b.set(body, 19);
          check(b, { as4, ibgp: true });
        },
      ),
      { numRuns: 20000 },
    );
  });

  it('completely random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => check(b, { as4: true, ibgp: true })),
      { numRuns: 5000 },
    );
  });
});
