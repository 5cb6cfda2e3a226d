// TAP writes with the 24-byte virtio_net_hdr_v1_hash_tunnel (Linux ≥ 6.17, TUN_F_UDP_TUNNEL_GSO):
// one VXLAN super-frame (outer IPv4/UDP/VXLAN around a 20 000-byte TCP GSO frame with a partial inner
// checksum) written into TAP `in` comes out of TAP `out` as MSS-sized VXLAN packets with complete
// checksums. Both TAPs live in a namespace made here, which routes the outer destination out of `out`
// (no offloads there, so the kernel must segment); we read `out`'s queue. What the kernel (6.18)
// showed: the write direction depends on the header size only (24 bytes: accepted and segmented even
// without TUN_F_UDP_TUNNEL_GSO, which governs what the kernel may send us); with the 12-byte
// virtio_net_hdr_v1 the tunnel gso_type is refused with EINVAL. Live (root).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as io from '../../src/dataplane/devices/native.js';
import { pseudoHeaderSum } from '../../src/dataplane/wire/checksum.js';
import { ip4Check, IP4_OK } from '../../src/dataplane/wire/ipv4.js';
import { tcpChecksumOk } from '../../src/dataplane/wire/tcp.js';
import { VNET_HDR_TNL_LEN, vnetWriteVxlanTcp4Gso } from '../../src/dataplane/wire/virtio.js';
import { ip, liveSkipReason, tryIp } from '../io/helpers.js';

const pid = process.pid;
const NS = `ctgns${pid}`;
const TIN = `ctgi${pid}`;
const TOUT = `ctgo${pid}`;
const PEER_MAC = [2, 0, 0, 0, 0, 0x99];
const OUTER_SRC = 0x0afd0102; // 10.253.1.2 (on `in`'s subnet)
const OUTER_DST = 0x0afd0202; // 10.253.2.2 (a static neighbour behind `out`)
const PAYLOAD = 20000;
const MSS = 1400;

/** The VXLAN super-frame at off; returns its length. Inner TCP checksum = pseudo-header sum. */
function vxlanSuperFrame(u8: Uint8Array, off: number, dstMac: number[]): number {
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  const innerTcpLen = 20 + PAYLOAD;
  const innerIpLen = 20 + innerTcpLen;
  const outerIpLen = 20 + 8 + 8 + 14 + innerIpLen;
  u8.set(dstMac, off);
  u8.set([2, 0, 0, 0, 0, 1], off + 6);
  dv.setUint16(off + 12, 0x0800);
  const oip = off + 14;
  u8.set([0x45, 0], oip);
  dv.setUint16(oip + 2, outerIpLen);
  dv.setUint16(oip + 4, 0x100);
  dv.setUint16(oip + 6, 0x4000);
  u8.set([64, 17, 0, 0], oip + 8);
  dv.setUint32(oip + 12, OUTER_SRC);
  dv.setUint32(oip + 16, OUTER_DST);
  let s = 0;
  for (let k = 0; k < 20; k += 2) s += dv.getUint16(oip + k);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  dv.setUint16(oip + 10, ~s & 0xffff);
  const udp = oip + 20;
  dv.setUint16(udp, 40001);
  dv.setUint16(udp + 2, 4789);
  dv.setUint16(udp + 4, outerIpLen - 20);
  dv.setUint16(udp + 6, 0); // VXLAN: no outer UDP checksum (RFC 7348 §5)
  u8.set([0x08, 0, 0, 0, 0, 0, 1, 0], udp + 8); // VNI 1
  const ie = udp + 16;
  u8.set([2, 0, 0, 0, 0, 0xb, 2, 0, 0, 0, 0, 0xa, 8, 0], ie);
  const iip = ie + 14;
  u8.set([0x45, 0], iip);
  dv.setUint16(iip + 2, innerIpLen);
  dv.setUint16(iip + 4, 7);
  dv.setUint16(iip + 6, 0x4000);
  u8.set([64, 6, 0, 0], iip + 8);
  dv.setUint32(iip + 12, 0x0a410002);
  dv.setUint32(iip + 16, 0x0a410103);
  s = 0;
  for (let k = 0; k < 20; k += 2) s += dv.getUint16(iip + k);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  dv.setUint16(iip + 10, ~s & 0xffff);
  const t = iip + 20;
  u8.fill(0, t, t + 20);
  dv.setUint16(t, 40000);
  dv.setUint16(t + 2, 5201);
  dv.setUint32(t + 4, 0xfffff000); // sequence wraps inside the super-frame
  dv.setUint32(t + 8, 1);
  u8[t + 12] = 5 << 4;
  u8[t + 13] = 0x18; // ACK PSH
  dv.setUint16(t + 14, 1024);
  dv.setUint16(t + 16, pseudoHeaderSum(0x0a410002, 0x0a410103, 6, innerTcpLen)); // CHECKSUM_PARTIAL
  for (let k = 0; k < PAYLOAD; k++) u8[t + 20 + k] = (k * 13 + 5) & 255;
  return t + 20 + PAYLOAD - off;
}

describe.skipIf(liveSkipReason !== '')(
  `TAP tunnel GSO header (live${liveSkipReason ? `: skipped, ${liveSkipReason}` : ''})`,
  () => {
    const fds: number[] = [];
    let tin = -1;
    let tout = -1;
    let inMac: number[] = [];
    let outMac = '';
    const u8 = new Uint8Array(new SharedArrayBuffer(1 << 17));
    const HDR = 64;

    beforeAll(() => {
      tryIp('netns', 'del', NS);
      ip('netns', 'add', NS);
      tin = io.tapOpen(TIN, { vnetHdr: true }).fd;
      fds.push(tin);
      tout = io.tapOpen(TOUT).fd; // no vnet header, no offloads: the kernel segments for it
      fds.push(tout);
      inMac = io
        .ifMac(TIN)
        .split(':')
        .map((h) => parseInt(h, 16));
      outMac = io.ifMac(TOUT);
      for (const [dev, addr] of [
        [TIN, '10.253.1.1/24'],
        [TOUT, '10.253.2.1/24'],
      ]) {
        ip('link', 'set', dev, 'netns', NS);
        ip('netns', 'exec', NS, 'sysctl', '-qw', `net.ipv6.conf.${dev}.disable_ipv6=1`);
        ip('-n', NS, 'addr', 'add', addr, 'dev', dev);
        ip('-n', NS, 'link', 'set', dev, 'up');
      }
      ip('netns', 'exec', NS, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
      ip(
        '-n',
        NS,
        'neigh',
        'replace',
        '10.253.2.2',
        'lladdr',
        '02:00:00:00:00:99',
        'dev',
        TOUT,
        'nud',
        'permanent',
      );
    });
    afterAll(() => {
      for (const fd of fds) {
        try {
          io.close(fd);
        } catch {
          /* closed */
        }
      }
      tryIp('netns', 'del', NS); // takes the TAPs with it
      tryIp('link', 'del', TIN);
      tryIp('link', 'del', TOUT);
    });

    /** Writes the super-frame with a header of hdrSize bytes (the first hdrSize of the 24) into fd. */
    function writeSuperFrame(fd: number, hdrSize: number, mac: number[]): number {
      const len = vxlanSuperFrame(u8, HDR + VNET_HDR_TNL_LEN, mac);
      expect(vnetWriteVxlanTcp4Gso(u8, HDR, HDR + VNET_HDR_TNL_LEN, len, MSS)).toBe(
        14 + 20 + 8 + 8 + 14 + 20 + 20,
      );
      u8.copyWithin(HDR + hdrSize, HDR + VNET_HDR_TNL_LEN, HDR + VNET_HDR_TNL_LEN + len);
      const status = new Int32Array(1);
      io.writeBatchStatus(fd, u8, Uint32Array.of(HDR), Uint32Array.of(hdrSize + len), 1, status);
      return status[0];
    }

    /** Reads `out` until every segment is there (frames that are not our VXLAN are skipped), checks them. */
    function expectSegments(): void {
      const n = Math.ceil(PAYLOAD / MSS);
      const rx = new Uint8Array(new SharedArrayBuffer(64 * 2048));
      const offs = Uint32Array.from({ length: 64 }, (_, i) => i * 2048);
      const lens = new Uint32Array(64);
      const segs: Uint8Array[] = [];
      for (let tries = 0; segs.length < n && tries < 50; tries++) {
        io.poll(Int32Array.of(tout), 100);
        const got = io.readBatch(tout, rx, offs, lens, 64, 2048);
        for (let i = 0; i < got; i++) {
          const f = rx.slice(offs[i], offs[i] + lens[i]);
          if (f[12] === 8 && f[13] === 0 && f[23] === 17 && ((f[36] << 8) | f[37]) === 4789) segs.push(f);
        }
      }
      expect(segs.length).toBe(n);
      let payload = 0;
      segs.forEach((f, k) => {
        const dv = new DataView(f.buffer);
        const chunk = k < n - 1 ? MSS : PAYLOAD - (n - 1) * MSS;
        expect(f.length).toBe(14 + 20 + 16 + 14 + 20 + 20 + chunk);
        expect(Array.from(f.subarray(0, 6))).toEqual(PEER_MAC);
        expect(Array.from(f.subarray(6, 12), (b) => b.toString(16).padStart(2, '0')).join(':')).toBe(outMac);
        expect(ip4Check(f, 14, f.length - 14)).toBe(IP4_OK); // outer: length and checksum per segment
        expect(f[14 + 8]).toBe(63); // forwarded
        expect(dv.getUint16(38)).toBe(f.length - 34); // outer UDP length
        const iip = 14 + 20 + 16 + 14;
        expect(ip4Check(f, iip, f.length - iip)).toBe(IP4_OK);
        expect(dv.getUint16(iip + 4)).toBe((7 + k) & 0xffff);
        expect(tcpChecksumOk(f, iip)).toBe(true);
        expect(dv.getUint32(iip + 24)).toBe((0xfffff000 + k * MSS) >>> 0);
        for (let j = 0; j < chunk; j++) {
          if (f[iip + 40 + j] !== (((payload + j) * 13 + 5) & 255)) throw new Error(`segment ${k} byte ${j}`);
        }
        payload += chunk;
      });
      expect(payload).toBe(PAYLOAD);
    }

    it('a VXLAN TCP super-frame written with the 24-byte header leaves segmented, checksums complete', () => {
      io.tapSetTunnelGso(tin); // TUNSETVNETHDRSZ 24 + TUNSETOFFLOAD CSUM|TSO4|UDP_TUNNEL_GSO
      expect(io.errnoName(writeSuperFrame(tin, VNET_HDR_TNL_LEN, inMac)), 'the kernel refused it').toBe(
        io.errnoName(0),
      );
      expectSegments();
    });

    it('writing needs only the 24-byte header: the same without TUN_F_UDP_TUNNEL_GSO', () => {
      io.tapSetOffload(tin, io.TUN_F.CSUM | io.TUN_F.TSO4);
      expect(writeSuperFrame(tin, VNET_HDR_TNL_LEN, inMac)).toBe(0);
      expectSegments();
    });

    it('the 12-byte header cannot carry it: EINVAL for that frame; the offload flag needs CSUM', () => {
      const name = `ctgn${pid}`;
      const t = io.tapOpen(name, { vnetHdr: true });
      fds.push(t.fd);
      expect(() => io.tapSetOffload(t.fd, io.TUN_F.UDP_TUNNEL_GSO)).toThrow(
        /TUNSETOFFLOAD: Invalid argument \(EINVAL\)/,
      );
      io.tapSetVnetHdrSize(t.fd, 12);
      io.tapSetOffload(t.fd, io.TUN_F.CSUM | io.TUN_F.TSO4 | io.TUN_F.UDP_TUNNEL_GSO);
      const mac = io
        .ifMac(name)
        .split(':')
        .map((h) => parseInt(h, 16));
      ip('link', 'set', name, 'netns', NS);
      ip('netns', 'exec', NS, 'sysctl', '-qw', `net.ipv6.conf.${name}.disable_ipv6=1`);
      ip('-n', NS, 'link', 'set', name, 'up');
      const status = writeSuperFrame(t.fd, 12, mac);
      expect(io.errnoName(status)).toBe('EINVAL');
      expect(io.txErrorKind(status)).toBe('refused');
    });
  },
);
