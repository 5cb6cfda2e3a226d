import { describe, expect, it } from 'vitest';
import { emptyCaps } from '../../src/control/bgp/caps.js';
import {
  encodeKeepalive,
  encodeNotification,
  encodeOpen,
  encodeUpdate,
} from '../../src/control/bgp/codec.js';
import { BgpFramer } from '../../src/control/bgp/framer.js';
import { toHex } from './helpers.js';

const stream = [
  encodeOpen({ asn: 64512, holdTime: 90, bgpId: 1, caps: { ...emptyCaps(), as4: 64512 } }),
  encodeKeepalive(),
  encodeUpdate(
    {
      attrs: { origin: 0, asPath: [], nextHop: 0x0a000001, localPref: 100 },
      nlri: [{ addr: 0x0a410000, len: 26 }],
    },
    { as4: true, ibgp: true },
  ),
  encodeNotification(6, 2),
];
const all = new Uint8Array(stream.reduce((n, m) => n + m.length, 0));
{
  let o = 0;
  for (const m of stream) {
    all.set(m, o);
    o += m.length;
  }
}
const expected = stream.map(toHex);

describe('bgp framer', () => {
  it('reassembles the stream for every single split point', () => {
    for (let i = 0; i <= all.length; i++) {
      const f = new BgpFramer();
      const got = [...f.push(all.slice(0, i)), ...f.push(all.slice(i))];
      expect(got.map(toHex)).toEqual(expected);
      expect(f.buffered).toBe(0);
    }
  });

  it('reassembles the stream for every pair of split points', () => {
    for (let i = 0; i <= all.length; i++) {
      for (let j = i; j <= all.length; j++) {
        const f = new BgpFramer();
        const got = [...f.push(all.slice(0, i)), ...f.push(all.slice(i, j)), ...f.push(all.slice(j))];
        if (got.length !== stream.length) throw new Error(`split ${i},${j}: ${got.length} messages`);
      }
    }
  });

  it('reassembles one byte at a time', () => {
    const f = new BgpFramer();
    const got: Uint8Array[] = [];
    for (const b of all) got.push(...f.push(Uint8Array.of(b)));
    expect(got.map(toHex)).toEqual(expected);
  });

  it('bad marker → 1/1, reported as soon as a marker octet is wrong', () => {
    const f = new BgpFramer();
    expect(f.push(Uint8Array.of(0xff, 0xff, 0x00))).toEqual([]);
    expect(f.error).toMatchObject({ code: 1, subcode: 1 });
    expect(f.push(encodeKeepalive())).toEqual([]); // stays failed
  });

  it('bad length → 1/2 with the length as data; messages before it are delivered', () => {
    const bad = encodeKeepalive();
    bad[16] = 0x10;
    bad[17] = 0x01; // 4097
    const f = new BgpFramer();
    const out = f.push(new Uint8Array([...encodeKeepalive(), ...bad]));
    expect(out.length).toBe(1);
    expect(f.error).toMatchObject({ code: 1, subcode: 2 });
    expect(toHex(f.error!.data)).toBe('1001');
  });

  it('bad type → 1/3', () => {
    const bad = encodeKeepalive();
    bad[18] = 42;
    const f = new BgpFramer();
    f.push(bad);
    expect(f.error).toMatchObject({ code: 1, subcode: 3 });
  });
});
