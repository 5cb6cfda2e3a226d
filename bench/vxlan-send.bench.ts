// VXLAN send paths side by side (issue 9: "VXLAN via UDP GSO on kernel UDP sockets or via tunnel-GSO
// writes to a host TAP: measure both, keep the faster as the default and say why"). Root only; not a
// test. The same 64 KiB VXLAN super-frame (outer Ethernet/IPv4/UDP/VXLAN around a TCP/IPv4 GSO frame
// of 45 segments of 1 410 bytes, the inner checksum partial) leaves one network namespace through the
// same egress, a TAP without offloads whose queue nobody reads (so the kernel segments whatever is
// not segmented yet and every path ends in the same cheap drop), three ways:
//   native   the packet uplink's path (the default): the addon's fused segmentTcp4 (copy + TCP
//            checksum per segment), VXLAN outer headers per segment, one sendmmsg on an AF_PACKET
//            socket bound to the egress (devices/tunnel-seg.ts TunnelSegmenter.segment);
//   udp-gso  the `--uplink udp` path: segments laid back to back behind VXLAN headers, UDP_SEGMENT
//            sends on a kernel UDP socket (TunnelSegmenter.segmentUdpGso); the kernel builds the outer
//            headers and UDP checksums and segments at the egress;
//   host-tap the super-frame written whole to a TAP in the namespace with the 24-byte tunnel vnet
//            header (tapSetTunnelGso, Linux >= 6.17); the kernel routes and forwards it (ip_forward in
//            this namespace) and segments it at the egress.
// Each path runs for a fixed number of super-frames, three alternating rounds; the figure is the
// process's CPU time (user + system: the kernel's segmentation, routing and transmit run in the
// sending thread's system calls) per GB of inner TCP payload, and the wall-clock rate. Every path
// also copies the template into its slot first (the segmenters cut in place), so the copy is in
// every figure alike. Run: `npm run build && node dist/bench/vxlan-send.bench.js [--quick]`.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as io from '../src/dataplane/devices/native.js';
import { TunnelSegmenter, type GsoQueue, type SegmentQueue } from '../src/dataplane/devices/tunnel-seg.js';
import { Batch, PKT_GSO } from '../src/dataplane/graph/packet.js';
import { pseudoHeaderSum } from '../src/dataplane/wire/checksum.js';
import { emitIp4Header } from '../src/dataplane/wire/ipv4.js';
import { VNET_HDR_TNL_LEN, vnetWriteVxlanTcp4Gso } from '../src/dataplane/wire/virtio.js';

const NS = `vxs${process.pid % 10000}`;
const TIN = 'vxsin';
const TOUT = 'vxsout';
const MSS = 1410; // VXLAN MTU 1450 - inner IPv4 and TCP headers
const SEGS = 45;
const PAYLOAD = SEGS * MSS;
const SRC = 0x0afd0102; // 10.253.1.2: a VTEP behind `in` (not an address of this namespace)
const DST = 0x0afd0202; // 10.253.2.2: a static neighbour behind `out`
const SLOT = 128 << 10;
const SCRATCH = 4 << 20;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore' });
}

/** The VXLAN super-frame at off (outer Ethernet first); returns its length. */
function superFrame(u8: Uint8Array, off: number, dstMac: number[]): number {
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  const innerIpLen = 40 + PAYLOAD;
  const outerIpLen = 20 + 16 + 14 + innerIpLen;
  u8.set(dstMac, off);
  u8.set([2, 0, 0, 0, 0, 1, 8, 0], off + 6);
  const oip = off + 14;
  emitIp4Header(u8, oip, SRC, DST, 17, outerIpLen, 64, 0, 0x4000, 0);
  const udp = oip + 20;
  dv.setUint16(udp, 40001);
  dv.setUint16(udp + 2, 4789);
  dv.setUint16(udp + 4, outerIpLen - 20);
  dv.setUint16(udp + 6, 0);
  u8.set([0x08, 0, 0, 0, 0, 0x10, 0, 0], udp + 8); // VNI 4096
  const ie = udp + 16;
  u8.set([0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 2, 0, 0, 0, 0, 0xa, 8, 0], ie);
  const iip = ie + 14;
  emitIp4Header(u8, iip, 0x0a410002, 0x0a410103, 6, innerIpLen, 64, 0, 0x4000, 0);
  u8.fill(0, iip + 20, iip + 40);
  const t = iip + 20;
  dv.setUint16(t, 40000);
  dv.setUint16(t + 2, 5201);
  dv.setUint32(t + 4, 1);
  dv.setUint32(t + 8, 1);
  u8[t + 12] = 5 << 4;
  u8[t + 13] = 0x10;
  dv.setUint16(t + 14, 1024);
  dv.setUint16(t + 16, pseudoHeaderSum(0x0a410002, 0x0a410103, 6, 20 + PAYLOAD));
  for (let k = 0; k < PAYLOAD; k++) u8[t + 20 + k] = (k * 13 + 5) & 255;
  return t + 20 + PAYLOAD - off;
}

interface Row {
  path: string;
  cpuPerGB: number;
  gbps: number;
  /** frames the egress got (sent or dropped) per super-frame: SEGS when the path segmented them all */
  perFrame: number;
}

/** Frames the egress transmitted or dropped so far (sysfs of this namespace: ip netns exec mounts it). */
function egressFrames(): number {
  const rd = (f: string): number => Number(fs.readFileSync(`/sys/class/net/${TOUT}/statistics/${f}`, 'utf8'));
  return rd('tx_packets') + rd('tx_dropped');
}

/** Runs `send` n times; CPU seconds (user + system) per GB of inner payload and Gbit/s of it. */
function measure(path: string, n: number, send: () => void): Row {
  const f0 = egressFrames();
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < n; k++) send();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  const gb = (n * PAYLOAD) / 1e9;
  const perFrame = (egressFrames() - f0) / n;
  return { path, cpuPerGB: (c.user + c.system) / 1e6 / gb, gbps: (gb * 8) / wall, perFrame };
}

/** Inside the namespace: the three paths, alternating. */
function inner(quick: boolean): Row[] {
  const tin = io.tapOpen(TIN, { vnetHdr: true }).fd;
  const tout = io.tapOpen(TOUT).fd; // kept open, never read: the egress queue fills and drops
  for (const [dev, addr] of [
    [TIN, '10.253.1.1/24'],
    [TOUT, '10.253.2.1/24'],
  ]) {
    spawnSync('sysctl', ['-qw', `net.ipv6.conf.${dev}.disable_ipv6=1`]);
    ip('addr', 'add', addr, 'dev', dev);
    ip('link', 'set', dev, 'up');
  }
  spawnSync('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  ip('neigh', 'replace', '10.253.2.2', 'lladdr', '02:00:00:00:00:99', 'dev', TOUT, 'nud', 'permanent');
  io.tapSetTunnelGso(tin);
  const inMac = io
    .ifMac(TIN)
    .split(':')
    .map((h) => parseInt(h, 16));
  const arena = new SharedArrayBuffer(2 * SLOT + SCRATCH);
  const b = new Batch(2, arena, 0, SLOT);
  const u8 = b.u8;
  // the template in slot 1, the frame each path sends in slot 0
  const tplOff = SLOT + 256;
  const tplLen = superFrame(u8, tplOff, [2, 0, 0, 0, 0, 0x99]);
  const frameOff = 256;
  const load = (): void => {
    u8.copyWithin(frameOff, tplOff, tplOff + tplLen);
    b.off[0] = frameOff;
    b.len[0] = tplLen;
    b.flags[0] = PKT_GSO;
    b.gso[0] = MSS;
  };
  const seg = new TunnelSegmenter(b, 2 * SLOT, 2 * SLOT + SCRATCH, false);
  // native: AF_PACKET on the egress, sendmmsg
  const pkt = io.packetSocket(TOUT, { sndbuf: 4 << 20 });
  const offs = new Uint32Array(256);
  const lens = new Uint32Array(256);
  const status = new Int32Array(256);
  let queued = 0;
  const flushPkt = (): void => {
    io.writeBatchStatus(pkt, u8, offs, lens, queued, status);
    queued = 0;
    seg.reset();
  };
  const sq: SegmentQueue = {
    push(off, len) {
      offs[queued] = off;
      lens[queued++] = len;
      return true;
    },
    room: () => offs.length - queued,
    flushQueue: flushPkt,
  };
  // udp-gso: a kernel UDP socket from the egress's address
  const udp = io.udpSocket('10.253.2.1', 4789, { sndbuf: 4 << 20 });
  const gsoSizes = new Uint16Array(256);
  const dsts = new Uint32Array(256);
  const ports = new Uint16Array(256).fill(4789);
  const flushUdp = (): void => {
    io.writeBatchUdpGso(udp, u8, offs, lens, queued, gsoSizes, status, dsts, ports);
    queued = 0;
    seg.reset();
  };
  const gq: GsoQueue = {
    pushGso(off, len, size, dst) {
      offs[queued] = off;
      lens[queued] = len;
      gsoSizes[queued] = size;
      dsts[queued++] = dst;
    },
    room: () => offs.length - queued,
    flushQueue: flushUdp,
  };
  // host-tap: the 24-byte tunnel header in front of the frame, one write
  const tapOffs = Uint32Array.of(frameOff - VNET_HDR_TNL_LEN);
  const tapLens = new Uint32Array(1);
  const tapStatus = new Int32Array(1);
  const paths: [string, () => void][] = [
    [
      'native',
      () => {
        load();
        if (seg.segment(b, 0, sq) !== 1) throw new Error('native: not segmented');
        flushPkt();
      },
    ],
    [
      'udp-gso',
      () => {
        load();
        if (seg.segmentUdpGso(b, 0, gq) !== 1) throw new Error('udp-gso: not segmented');
        flushUdp();
      },
    ],
    [
      'host-tap',
      () => {
        load();
        u8.set(inMac, frameOff); // to the TAP's own MAC: the namespace routes it
        if (vnetWriteVxlanTcp4Gso(u8, frameOff - VNET_HDR_TNL_LEN, frameOff, tplLen, MSS) === 0)
          throw new Error('host-tap: not a VXLAN super-frame');
        tapLens[0] = VNET_HDR_TNL_LEN + tplLen;
        io.writeBatchStatus(tin, u8, tapOffs, tapLens, 1, tapStatus);
        if (tapStatus[0] !== 0) throw new Error(`host-tap: write refused (${io.errnoName(tapStatus[0])})`);
      },
    ],
  ];
  const n = quick ? 2000 : 10000;
  for (const [, send] of paths) for (let k = 0; k < 200; k++) send(); // warm-up (JIT, caches)
  const rows: Row[] = [];
  for (let r = 0; r < 3; r++) for (const [name, send] of paths) rows.push(measure(name, n, send));
  for (const fd of [tin, tout, pkt, udp]) io.close(fd);
  return rows;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, c) => a - c);
  return s[s.length >> 1];
}

function main(): void {
  const quick = process.argv.includes('--quick');
  if (process.argv.includes('--inner')) {
    console.log(JSON.stringify(inner(quick)));
    return;
  }
  if (process.getuid?.() !== 0) throw new Error('vxlan-send: needs root (a network namespace)');
  spawnSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
  ip('netns', 'add', NS);
  try {
    for (const t of [TIN, TOUT]) ip('-n', NS, 'tuntap', 'add', t, 'mode', 'tap');
    const me = fileURLToPath(import.meta.url);
    const out = execFileSync(
      'ip',
      ['netns', 'exec', NS, process.execPath, me, '--inner', ...(quick ? ['--quick'] : [])],
      { encoding: 'utf8', timeout: 600_000 },
    );
    const rows = JSON.parse(out.trim().split('\n').pop()!) as Row[];
    console.log(
      `vxlan-send: 64 KiB VXLAN super-frames (${SEGS} x ${MSS} B), one thread, ${new Date().toISOString()}, load average ${os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
    );
    console.log(
      '| path | CPU-s per GB (3 rounds) | median | Gbit/s of inner payload (median) | egress frames per super-frame |',
    );
    console.log('|---|---|---:|---:|---:|');
    for (const p of ['native', 'udp-gso', 'host-tap']) {
      const rs = rows.filter((r) => r.path === p);
      console.log(
        `| ${p} | ${rs.map((r) => r.cpuPerGB.toFixed(3)).join(', ')} | ${median(rs.map((r) => r.cpuPerGB)).toFixed(3)} | ${median(rs.map((r) => r.gbps)).toFixed(2)} | ${median(rs.map((r) => r.perFrame)).toFixed(1)} |`,
      );
    }
  } finally {
    spawnSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
