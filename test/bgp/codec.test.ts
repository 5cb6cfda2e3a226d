import { describe, expect, it } from 'vitest';
import { mergeAs4Path } from '../../src/control/bgp/attrs.js';
import { emptyCaps } from '../../src/control/bgp/caps.js';
import {
  buildUpdates,
  decodeMessage,
  encodeEndOfRib,
  encodeKeepalive,
  encodeNotification,
  encodeOpen,
  encodeRouteRefresh,
  encodeUpdate,
  isEndOfRib,
  parseShutdownData,
  shutdownData,
} from '../../src/control/bgp/codec.js';
import type { BgpMessage, CodecOptions, Decoded, UpdateMsg } from '../../src/control/bgp/types.js';
import { BASE_ATTRS4, hex, msg, pfx, toHex, update } from './helpers.js';

const IBGP4: CodecOptions = { as4: true, ibgp: true };
const EBGP2: CodecOptions = { as4: false, ibgp: false };

function ok(d: Decoded<BgpMessage>): BgpMessage {
  if (!d.ok) throw new Error(`expected ok, got ${d.error.code}/${d.error.subcode} ${d.error.reason}`);
  return d.msg;
}
function upd(d: Decoded<BgpMessage>): UpdateMsg {
  const m = ok(d);
  if (m.type !== 'update') throw new Error(`expected update, got ${m.type}`);
  return m;
}
function err(d: Decoded<BgpMessage>): [number, number, string] {
  if (d.ok) throw new Error(`expected error, got ${d.msg.type}`);
  return [d.error.code, d.error.subcode, toHex(d.error.data)];
}

describe('bgp codec: fixed vectors', () => {
  it('KEEPALIVE is 19 octets of marker, length 19, type 4 (RFC 4271 §4.4)', () => {
    expect(toHex(encodeKeepalive())).toBe('ff'.repeat(16) + '001304');
    expect(ok(decodeMessage(encodeKeepalive(), IBGP4))).toEqual({ type: 'keepalive' });
  });

  it('OPEN with MP IPv4 unicast, route refresh and 4-octet AS matches the hand-built bytes', () => {
    const caps = { ...emptyCaps(), multiprotocol: [{ afi: 1, safi: 1 }], routeRefresh: true, as4: 64512 };
    const bytes = encodeOpen({ asn: 64512, holdTime: 90, bgpId: 0x0a000001, caps });
    const expected =
      'ff'.repeat(16) +
      '0031' + // 49
      '01' +
      '04' + // version
      'fc00' + // AS 64512
      '005a' + // hold 90
      '0a000001' +
      '14' + // opt param len 20
      '0206010400010001' + // MP ipv4/unicast
      '02020200' + // route refresh
      '020641040000fc00'; // 4-octet AS
    expect(toHex(bytes)).toBe(expected);
    const m = ok(decodeMessage(bytes, IBGP4));
    expect(m).toMatchObject({ type: 'open', version: 4, myAs: 64512, holdTime: 90, bgpId: 0x0a000001 });
    if (m.type === 'open') expect(m.caps).toEqual(caps);
  });

  it('OPEN: large AS goes into the 2-octet field as AS_TRANS', () => {
    const caps = { ...emptyCaps(), as4: 4200000000 };
    const m = ok(decodeMessage(encodeOpen({ asn: 4200000000, holdTime: 180, bgpId: 1, caps }), IBGP4));
    expect(m).toMatchObject({ myAs: 23456, caps: { as4: 4200000000 } });
  });

  it('OPEN: graceful restart capability flags and AFIs round-trip', () => {
    const gr = {
      restartTime: 120,
      restarting: true,
      notification: false,
      afis: [{ afi: 1, safi: 1, forwarding: true }],
    };
    const bytes = encodeOpen({
      asn: 64512,
      holdTime: 90,
      bgpId: 1,
      caps: { ...emptyCaps(), gracefulRestart: gr },
    });
    // 02 08 | 40 06 | 8078 (R bit + 120) | 0001 01 80
    expect(toHex(bytes)).toContain('0208400680780001' + '0180');
    const m = ok(decodeMessage(bytes, IBGP4));
    if (m.type === 'open') expect(m.caps.gracefulRestart).toEqual(gr);
  });

  it('OPEN: RFC 9072 extended optional parameters are parsed', () => {
    // Non-Ext OP Len 255, Non-Ext OP Type 255, Ext OP Len 0x000a, param type 2 with 2-octet length 7
    const body = '04fc00005a0a000001' + 'ff' + 'ff' + '000a' + '020007' + '41040000fc00' + '';
    // ext params: 3 (hdr) + 6 (AS4 cap)... length must match exactly: fix to 9
    const fixed = body.replace('ff' + 'ff' + '000a' + '020007', 'ff' + 'ff' + '0009' + '020006');
    const m = ok(decodeMessage(msg(1, fixed), IBGP4));
    expect(m).toMatchObject({ type: 'open', extendedParams: true, caps: { as4: 64512 } });
  });

  it('OPEN: unknown capabilities and non-capability parameters are kept, not fatal', () => {
    const m = ok(
      decodeMessage(msg(1, '04fc00005a0a000001' + '0a' + '0204' + 'aa020102' + '0302' + 'beef'), IBGP4),
    );
    expect(m).toMatchObject({ type: 'open', otherParams: [3] });
    if (m.type === 'open') expect(m.caps.unknown).toEqual([{ code: 0xaa, value: hex('0102') }]);
  });

  it('OPEN: parameters overrunning the message → 2/0', () => {
    expect(err(decodeMessage(msg(1, '04fc00005a0a000001' + '09' + '0206010400010001'), IBGP4))).toEqual([
      2,
      0,
      '',
    ]);
    expect(err(decodeMessage(msg(1, '04fc00005a0a000001' + '04' + '0206'), IBGP4))[0]).toBe(2);
  });

  it('NOTIFICATION with a shutdown communication (RFC 9003)', () => {
    const bytes = encodeNotification(6, 2, shutdownData('maintenance'));
    const m = ok(decodeMessage(bytes, IBGP4));
    expect(m).toMatchObject({ type: 'notification', code: 6, subcode: 2 });
    if (m.type === 'notification') expect(parseShutdownData(m.data)).toBe('maintenance');
  });

  it('ROUTE-REFRESH and its length check (RFC 7313 §5 → 7/1)', () => {
    expect(toHex(encodeRouteRefresh())).toBe('ff'.repeat(16) + '0017050001' + '0001');
    expect(ok(decodeMessage(encodeRouteRefresh(), IBGP4))).toEqual({
      type: 'route-refresh',
      afi: 1,
      safi: 1,
      subtype: 0,
    });
    expect(err(decodeMessage(msg(5, '0001000100'), IBGP4)).slice(0, 2)).toEqual([7, 1]);
  });

  it('UPDATE with ORIGIN, AS_PATH, NEXT_HOP, LOCAL_PREF and one /26', () => {
    const bytes = update('', BASE_ATTRS4 + '40050400000064', '1a0a410040');
    const u = upd(decodeMessage(bytes, IBGP4));
    expect(u.nlri).toEqual([pfx('10.65.0.64/26')]);
    expect(u.attrs).toEqual({
      origin: 0,
      asPath: [{ type: 2, asns: [65001] }],
      nextHop: 0x0a000001,
      localPref: 100,
    });
    expect(u.treatAsWithdraw).toBeUndefined();
    // Our encoder produces the identical bytes.
    expect(toHex(encodeUpdate({ attrs: u.attrs, nlri: u.nlri }, IBGP4))).toBe(toHex(bytes));
  });

  it('UPDATE: withdrawals only, and End-of-RIB', () => {
    const u = upd(decodeMessage(update('180a0101' + '00', '', ''), IBGP4));
    expect(u.withdrawn).toEqual([pfx('10.1.1.0/24'), pfx('0.0.0.0/0')]);
    expect(isEndOfRib(u)).toBe(false);
    expect(isEndOfRib(upd(decodeMessage(encodeEndOfRib(), IBGP4)))).toBe(true);
    // MP_UNREACH with no prefixes is End-of-RIB too.
    expect(isEndOfRib(upd(decodeMessage(update('', '800f03000101', ''), IBGP4)))).toBe(true);
  });

  it('UPDATE: every attribute we know round-trips through encode/decode', () => {
    const attrs = {
      origin: 2,
      asPath: [
        { type: 2, asns: [65001, 4200000001] },
        { type: 1, asns: [7, 8] },
      ],
      nextHop: 0x0a000001,
      med: 5,
      localPref: 200,
      atomicAggregate: true,
      aggregator: { as: 4200000001, addr: 0x01020304 },
      communities: [0xfde90001, 0xffffff01],
      extCommunities: hex('0002fde900000001'),
      largeCommunities: [4200000001, 1, 2],
      originatorId: 0x0a000009,
      clusterList: [0x01010101, 0x02020202],
      unknown: [{ flags: 0xe0, code: 99, value: hex('abcd') }],
    };
    const u = upd(decodeMessage(encodeUpdate({ attrs, nlri: [pfx('10.0.0.0/8')] }, IBGP4), IBGP4));
    expect(u.attrs).toEqual(attrs);
    expect(u.errors).toBeUndefined();
  });

  it('UPDATE: 2-octet session sends AS_TRANS + AS4_PATH/AS4_AGGREGATOR and merges them back', () => {
    const attrs = {
      origin: 0,
      asPath: [{ type: 2, asns: [65001, 4200000001, 100] }],
      nextHop: 0x0a000001,
      aggregator: { as: 4200000001, addr: 0x01020304 },
    };
    const bytes = encodeUpdate({ attrs, nlri: [pfx('10.0.0.0/8')] }, EBGP2);
    // AS_PATH 2-octet: 02 03 fde9 5ba0 0064
    expect(toHex(bytes)).toContain('40020802' + '03fde95ba00064');
    const u = upd(decodeMessage(bytes, EBGP2));
    expect(u.attrs).toEqual(attrs);
  });

  it('RFC 6793 §4.2.3 merge: leading ASes from AS_PATH, rest from AS4_PATH; longer AS4_PATH ignored', () => {
    const asPath = [{ type: 2, asns: [100, 23456, 200] }];
    expect(mergeAs4Path(asPath, [{ type: 2, asns: [70000, 200] }])).toEqual([
      { type: 2, asns: [100, 70000, 200] },
    ]);
    expect(mergeAs4Path(asPath, [{ type: 2, asns: [1, 2, 3, 4] }])).toEqual(asPath);
    // AGGREGATOR from a 2-octet-only AS (not AS_TRANS) → AS4_PATH is disregarded.
    const attrsHex =
      '40010100' +
      '4002080203' +
      '00645ba000c8' +
      '4003040a000001' +
      'c00706' +
      '006401020304' + // AGGREGATOR 100, 1.2.3.4
      'c0110a' +
      '0202000111700000' +
      '00c8'.padStart(8, '0');
    const u = upd(decodeMessage(update('', attrsHex, '080a'), EBGP2));
    expect(u.attrs?.asPath).toEqual([{ type: 2, asns: [100, 23456, 200] }]);
  });

  it('buildUpdates splits at 4096 octets and groups prefixes by attributes', () => {
    const prefixes = Array.from({ length: 2000 }, (_, i) => ({
      addr: (0x0a000000 + i * 256) >>> 0,
      len: 24,
    }));
    const attrs = { origin: 0, asPath: [], nextHop: 0x0a000001, localPref: 100 };
    const msgs = buildUpdates(prefixes.slice(0, 1500), [{ attrs, prefixes }], IBGP4);
    let withdrawn = 0;
    let announced = 0;
    for (const m of msgs) {
      expect(m.length).toBeLessThanOrEqual(4096);
      const u = upd(decodeMessage(m, IBGP4));
      withdrawn += u.withdrawn.length;
      announced += u.nlri.length;
      if (u.nlri.length) expect(u.attrs).toEqual(attrs);
    }
    expect([withdrawn, announced]).toEqual([1500, 2000]);
  });
});

describe('bgp codec: message header errors (RFC 4271 §6.1)', () => {
  it('bad marker → 1/1', () => {
    const b = encodeKeepalive();
    b[3] = 0;
    expect(err(decodeMessage(b, IBGP4))).toEqual([1, 1, '']);
  });
  it('bad length → 1/2 with the length as data', () => {
    const b = encodeKeepalive();
    b[17] = 18;
    expect(err(decodeMessage(b, IBGP4))).toEqual([1, 2, '0012']);
    expect(err(decodeMessage(msg(4, '00'), IBGP4))).toEqual([1, 2, '0014']);
    expect(err(decodeMessage(msg(2, '00'), IBGP4))).toEqual([1, 2, '0014']);
  });
  it('bad type → 1/3 with the type as data', () => {
    expect(err(decodeMessage(msg(9, ''), IBGP4))).toEqual([1, 3, '09']);
  });
});

describe('bgp codec: RFC 7606 error handling outcomes', () => {
  const N = '1a0a410040'; // 10.65.0.64/26
  const cases: [string, string, 'withdraw' | 'discard' | 'ok'][] = [
    ['ORIGIN length 2', '4001020000' + '40020602010000fde9' + '4003040a000001', 'withdraw'],
    ['ORIGIN value 3', '40010103' + '40020602010000fde9' + '4003040a000001', 'withdraw'],
    ['AS_PATH segment overrun', '40010100' + '40020602020000fde9' + '4003040a000001', 'withdraw'],
    ['AS_PATH bad segment type', '40010100' + '40020609010000fde9' + '4003040a000001', 'withdraw'],
    ['NEXT_HOP length 3', '40010100' + '40020602010000fde9' + '4003030a0000', 'withdraw'],
    ['NEXT_HOP 0.0.0.0', '40010100' + '40020602010000fde9' + '400304' + '00000000', 'withdraw'],
    ['missing NEXT_HOP', '40010100' + '40020602010000fde9', 'withdraw'],
    ['missing ORIGIN', '40020602010000fde9' + '4003040a000001', 'withdraw'],
    ['MED length 2', BASE_ATTRS4 + '80040200ff', 'withdraw'],
    ['LOCAL_PREF length 3', BASE_ATTRS4 + '400503000064', 'withdraw'],
    ['ATOMIC_AGGREGATE length 1', BASE_ATTRS4 + '40060100', 'discard'],
    ['AGGREGATOR length 5', BASE_ATTRS4 + 'c007050000000001', 'discard'],
    ['COMMUNITIES length 3', BASE_ATTRS4 + 'c00803000001', 'withdraw'],
    ['ORIGINATOR_ID length 2', BASE_ATTRS4 + '80090201', 'withdraw'.slice(0) as 'withdraw'],
    ['CLUSTER_LIST length 0', BASE_ATTRS4 + '800a00', 'withdraw'],
    ['EXT COMMUNITIES length 7', BASE_ATTRS4 + 'c0100700000000000000', 'withdraw'],
    ['LARGE COMMUNITY length 8', BASE_ATTRS4 + 'c020080000000100000002', 'withdraw'],
    ['ORIGIN with optional flag', '80010100' + '40020602010000fde9' + '4003040a000001', 'withdraw'],
    ['MED with transitive flag', BASE_ATTRS4 + 'c00404000000ff', 'withdraw'],
    ['duplicate NEXT_HOP (first kept)', BASE_ATTRS4 + '4003040a000002', 'discard'],
    ['attribute overruns the list', BASE_ATTRS4 + 'c008ff00000001', 'withdraw'],
    ['truncated attribute header', BASE_ATTRS4 + 'c0', 'withdraw'],
    ['unknown optional transitive', BASE_ATTRS4 + 'c0630101', 'ok'],
    ['unknown optional non-transitive', BASE_ATTRS4 + '80630101', 'ok'],
  ];
  for (const [name, attrsHex, outcome] of cases) {
    it(`${name} → ${outcome}`, () => {
      const u = upd(decodeMessage(update('', ORIGINATOR_FIX(name, attrsHex), N), IBGP4));
      if (outcome === 'withdraw') expect(u.treatAsWithdraw).toBe(true);
      else expect(u.treatAsWithdraw).toBeUndefined();
      if (outcome === 'discard') expect(u.errors?.some((e) => e.startsWith('attribute-discard'))).toBe(true);
      if (outcome === 'ok') expect(u.errors).toBeUndefined();
    });
  }

  it('LOCAL_PREF from an eBGP peer is discarded', () => {
    const u = upd(decodeMessage(update('', BASE_ATTRS4 + '40050400000064', N), { as4: true, ibgp: false }));
    expect(u.attrs?.localPref).toBeUndefined();
    expect(u.treatAsWithdraw).toBeUndefined();
  });

  it('unknown optional transitive attribute is kept with the Partial bit set', () => {
    const u = upd(decodeMessage(update('', BASE_ATTRS4 + 'c0630101', N), IBGP4));
    expect(u.attrs?.unknown).toEqual([{ flags: 0xe0, code: 0x63, value: hex('01') }]);
  });

  it('unrecognized well-known attribute → session reset 3/2 with the attribute as data', () => {
    expect(err(decodeMessage(update('', BASE_ATTRS4 + '40630101', N), IBGP4))).toEqual([3, 2, '40630101']);
  });

  it('duplicate MP_REACH_NLRI → 3/1; malformed MP_REACH → 3/9', () => {
    const mp = '800e0d000101040a00000100180a0102';
    expect(err(decodeMessage(update('', '40010100' + '400200' + mp + mp, ''), IBGP4)).slice(0, 2)).toEqual([
      3, 1,
    ]);
    expect(
      err(decodeMessage(update('', '40010100' + '400200' + '800e03000101', ''), IBGP4)).slice(0, 2),
    ).toEqual([3, 9]);
  });

  it('MP_REACH IPv4 unicast routes are decoded with their own next hop; other families ignored', () => {
    const u = upd(
      decodeMessage(update('', '40010100' + '400200' + '800e0d000101040a00000900180a0102', ''), IBGP4),
    );
    expect(u.mpReach).toEqual({ nextHop: 0x0a000009, nlri: [pfx('10.1.2.0/24')] });
    const v6 = upd(
      decodeMessage(
        update(
          '',
          '40010100' + '400200' + '800e1a000201' + '10' + '20010db8' + '0'.repeat(24) + '00' + '2020010db8',
          '',
        ),
        IBGP4,
      ),
    );
    expect(v6.otherFamily).toBe(true);
    expect(v6.mpReach).toBeUndefined();
  });

  it('withdrawn-routes or attribute-length overruns and bad NLRI reset the session', () => {
    expect(err(decodeMessage(msg(2, '00100000'), IBGP4)).slice(0, 2)).toEqual([3, 1]);
    expect(err(decodeMessage(msg(2, '00000010'), IBGP4)).slice(0, 2)).toEqual([3, 1]);
    expect(err(decodeMessage(update('', BASE_ATTRS4, '210a000000ff'), IBGP4)).slice(0, 2)).toEqual([3, 10]);
    expect(err(decodeMessage(update('', BASE_ATTRS4, '180a00'), IBGP4)).slice(0, 2)).toEqual([3, 10]);
    expect(err(decodeMessage(update('21ffffffffff', '', ''), IBGP4)).slice(0, 2)).toEqual([3, 1]);
  });

  it('NLRI with no attributes at all is treated as withdraw', () => {
    expect(upd(decodeMessage(update('', '', N), IBGP4)).treatAsWithdraw).toBe(true);
  });
});

// ORIGINATOR_ID length 2 needs its value padded to the stated length; keep the table readable.
function ORIGINATOR_FIX(name: string, attrsHex: string): string {
  return name.startsWith('ORIGINATOR_ID') ? BASE_ATTRS4 + '80090200ff' : attrsHex;
}
