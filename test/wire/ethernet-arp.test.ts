import { describe, expect, it } from 'vitest';
import * as arp from '../../src/dataplane/wire/arp.js';
import * as eth from '../../src/dataplane/wire/ethernet.js';
import * as F from './fixtures.js';
import { FILL, filled, ip, mac, place, toHex } from './helpers.js';

const WL = mac('66:73:2a:10:00:01');
const HOST = mac('ee:ee:ee:ee:ee:ee');
const A = ip('10.65.0.24');
const GW = ip('169.254.1.1');

describe('ethernet', () => {
  it('parses a fixture at an offset', () => {
    const { u8, off, len } = place(F.UDP_FRAME);
    expect(eth.ethCheck(u8, off, len)).toBe(eth.ETH_OK);
    expect(eth.parseEthernet(u8, off, len)).toEqual({
      dst: 'ee:ee:ee:ee:ee:ee',
      src: '66:73:2a:10:00:01',
      ethertype: eth.ETHERTYPE_IPV4,
      payloadOff: off + 14,
      payloadLen: len - 14,
      err: 0,
      errName: 'ok',
    });
    expect(eth.ethType(u8, off)).toBe(0x0800);
    expect(eth.macEq(u8, off + eth.ETH_DST, HOST)).toBe(true);
    expect(eth.macEq(u8, off + eth.ETH_SRC, HOST)).toBe(false);
    expect(eth.macEq(u8, off + eth.ETH_SRC, Uint8Array.from([0, ...WL]), 1)).toBe(true);
  });

  it('refuses 802.1Q and 802.1ad tagged frames', () => {
    const v = place(F.VLAN_FRAME);
    expect(eth.ethCheck(v.u8, v.off, v.len)).toBe(eth.ETH_ERR_VLAN);
    const rec = eth.parseEthernet(v.u8, v.off, v.len)!;
    expect(rec.errName).toBe('vlan-tagged');
    expect(rec.vlanTci).toBe((5 << 13) | 100);
    expect(rec.innerEthertype).toBe(eth.ETHERTYPE_IPV4);
    expect(rec.payloadOff).toBe(v.off + 18);
    const q = place(F.QINQ_FRAME);
    expect(eth.ethCheck(q.u8, q.off, q.len)).toBe(eth.ETH_ERR_VLAN);
  });

  it('refuses short frames and windows outside the array', () => {
    const { u8, off } = place(F.UDP_FRAME);
    expect(eth.ethCheck(u8, off, 13)).toBe(eth.ETH_ERR_SHORT);
    expect(eth.ethCheck(u8, off, 14)).toBe(eth.ETH_OK);
    expect(eth.ethCheck(u8, u8.length - 10, 14)).toBe(eth.ETH_ERR_SHORT);
    expect(eth.ethCheck(u8, -1, 14)).toBe(eth.ETH_ERR_SHORT);
    expect(eth.parseEthernet(u8, off, 13)).toBeNull();
  });

  it('classifies broadcast and multicast destinations', () => {
    const b = place(F.ARP_REQUEST);
    expect(eth.isBroadcast(b.u8, b.off)).toBe(true);
    expect(eth.isMulticast(b.u8, b.off)).toBe(true);
    const m = Uint8Array.from([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]);
    expect(eth.isBroadcast(m, 0)).toBe(false);
    expect(eth.isMulticast(m, 0)).toBe(true);
    expect(eth.isMulticast(HOST, 0)).toBe(false);
    expect(eth.isBroadcast(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]), 0)).toBe(false);
  });

  it('emits a header byte for byte', () => {
    const u8 = filled(40);
    eth.emitEthernet(u8, 3, HOST, WL, eth.ETHERTYPE_IPV4);
    expect(toHex(u8, 3, 14)).toBe(F.UDP_FRAME.slice(0, 28));
    expect(u8[2]).toBe(FILL);
    expect(u8[17]).toBe(FILL);
    const m = filled(10);
    eth.writeMac(m, 2, Uint8Array.from([9, 9, 1, 2, 3, 4, 5, 6]), 2);
    expect([...m]).toEqual([FILL, FILL, 1, 2, 3, 4, 5, 6, FILL, FILL]);
  });
});

describe('arp', () => {
  it('parses a request and a reply fixture', () => {
    const r = place(F.ARP_REQUEST);
    const a = r.off + 14;
    expect(arp.arpCheck(r.u8, a, r.len - 14)).toBe(arp.ARP_OK);
    expect(arp.parseArp(r.u8, a, r.len - 14)).toEqual({
      htype: 1,
      ptype: 0x0800,
      hlen: 6,
      plen: 4,
      op: arp.ARP_OP_REQUEST,
      sha: '66:73:2a:10:00:01',
      spa: A,
      tha: '00:00:00:00:00:00',
      tpa: GW,
      probe: false,
      gratuitous: false,
      err: 0,
      errName: 'ok',
    });
    const p = place(F.ARP_REPLY);
    const rec = arp.parseArp(p.u8, p.off + 14, 28)!;
    expect(rec.op).toBe(arp.ARP_OP_REPLY);
    expect(rec.sha).toBe('ee:ee:ee:ee:ee:ee');
    expect(rec.spa).toBe(GW);
    expect(rec.tpa).toBe(A);
    expect(arp.arpOp(p.u8, p.off + 14)).toBe(2);
    expect(arp.arpSpa(p.u8, p.off + 14)).toBe(GW);
    expect(arp.arpTpa(p.u8, p.off + 14)).toBe(A);
  });

  it('accepts Ethernet padding after the 28 bytes', () => {
    const r = place(F.ARP_REQUEST_PADDED);
    expect(r.len).toBe(60);
    expect(arp.arpCheck(r.u8, r.off + 14, r.len - 14)).toBe(arp.ARP_OK);
  });

  it('refuses short ARP, non-Ethernet/IPv4, bad lengths and bad ops', () => {
    const r = place(F.ARP_REQUEST);
    const a = r.off + 14;
    expect(arp.arpCheck(r.u8, a, 27)).toBe(arp.ARP_ERR_SHORT);
    expect(arp.parseArp(r.u8, a, 27)).toBeNull();
    expect(arp.arpCheck(r.u8, r.u8.length - 20, 28)).toBe(arp.ARP_ERR_SHORT);

    const v6 = place(F.ARP_IPV6_PTYPE);
    expect(arp.arpCheck(v6.u8, v6.off + 14, v6.len - 14)).toBe(arp.ARP_ERR_NOT_ETH_IP4);
    expect(arp.parseArp(v6.u8, v6.off + 14, v6.len - 14)!.errName).toBe('not-ethernet-ipv4');

    const cases: Array<[number, number, number]> = [
      [arp.ARP_HTYPE + 1, 6, arp.ARP_ERR_NOT_ETH_IP4], // htype 6 (IEEE 802)
      [arp.ARP_HLEN, 8, arp.ARP_ERR_ADDR_LEN],
      [arp.ARP_PLEN, 16, arp.ARP_ERR_ADDR_LEN],
      [arp.ARP_OPER + 1, 3, arp.ARP_ERR_OP], // RARP request
      [arp.ARP_OPER + 1, 0, arp.ARP_ERR_OP],
    ];
    for (const [field, value, code] of cases) {
      const c = place(F.ARP_REQUEST);
      c.u8[c.off + 14 + field] = value;
      expect(arp.arpCheck(c.u8, c.off + 14, 28)).toBe(code);
    }
  });

  it('recognises probes and gratuitous ARP (RFC 5227)', () => {
    const p = place(F.ARP_PROBE);
    expect(arp.arpIsProbe(p.u8, p.off + 14)).toBe(true);
    expect(arp.arpIsGratuitous(p.u8, p.off + 14)).toBe(false);
    expect(arp.parseArp(p.u8, p.off + 14, 28)!.probe).toBe(true);
    const g = place(F.ARP_GRATUITOUS);
    expect(arp.arpIsProbe(g.u8, g.off + 14)).toBe(false);
    expect(arp.arpIsGratuitous(g.u8, g.off + 14)).toBe(true);
    const r = place(F.ARP_REQUEST);
    expect(arp.arpIsProbe(r.u8, r.off + 14)).toBe(false);
    expect(arp.arpIsGratuitous(r.u8, r.off + 14)).toBe(false);
    // a reply with spa 0 is not a probe
    const pr = place(F.ARP_PROBE_REPLY);
    expect(arp.arpIsProbe(pr.u8, pr.off + 14)).toBe(false);
  });

  it('emits a request byte for byte (42 bytes, nothing after)', () => {
    const u8 = filled(128);
    expect(arp.emitArpRequest(u8, 10, WL, A, GW)).toBe(42);
    expect(toHex(u8, 10, 42)).toBe(F.ARP_REQUEST);
    expect(u8[9]).toBe(FILL);
    expect(u8[52]).toBe(FILL);
  });

  it('emits a reply byte for byte', () => {
    const u8 = filled(128);
    expect(arp.emitArpReply(u8, 7, HOST, GW, WL, A)).toBe(arp.ARP_FRAME_LEN);
    expect(toHex(u8, 7, 42)).toBe(F.ARP_REPLY);
    expect(u8[6]).toBe(FILL);
    expect(u8[49]).toBe(FILL);
  });

  it('rewrites a request into its reply in place', () => {
    const r = place(F.ARP_REQUEST);
    arp.arpRewriteToReply(r.u8, r.off, HOST);
    expect(toHex(r.u8, r.off, r.len)).toBe(F.ARP_REPLY);
    expect(r.u8[r.off - 1]).toBe(FILL);
    expect(r.u8[r.off + r.len]).toBe(FILL);
  });

  it('rewrites a padded request, leaving the padding', () => {
    const r = place(F.ARP_REQUEST_PADDED);
    arp.arpRewriteToReply(r.u8, r.off, HOST);
    expect(toHex(r.u8, r.off, r.len)).toBe(F.ARP_REPLY_PADDED);
  });

  it('answers a probe as Linux does (tpa 0.0.0.0, tha = prober)', () => {
    const r = place(F.ARP_PROBE);
    arp.arpRewriteToReply(r.u8, r.off, HOST);
    expect(toHex(r.u8, r.off, r.len)).toBe(F.ARP_PROBE_REPLY);
  });
});
