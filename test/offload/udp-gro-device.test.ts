// The udp uplink's UDP_GRO receive (UdpDevice with `gro`) on loopback, no privileges needed: a sender
// uses UDP GSO, the kernel hands the GRO socket coalesced datagrams, and UdpDevice.read splits each
// back into one frame per original datagram, in order, each behind the synthesized outer header
// (sender → node IP:vxlanPort), byte for byte what the sender sent. A batch too small for the
// reservation keeps what fits and counts the rest as truncated.
import { afterEach, describe, expect, it } from 'vitest';
import * as io from '../../src/dataplane/devices/native.js';
import { Batch, GSO_SLOT_SIZE } from '../../src/dataplane/graph/packet.js';
import { MAX_PORTS } from '../../src/dataplane/graph/ports.js';
import { PortCounters } from '../../src/dataplane/graph/counters.js';
import { DeviceContext } from '../../src/dataplane/devices/device.js';
import {
  UDP_GRO_MAX_SEGS,
  UDP_OUTER_LEN,
  UdpDevice,
  UdpUplinkCounters,
} from '../../src/dataplane/devices/udp.js';
import { openUdpUplinkSocket } from '../../src/control/daemon/udp-uplink.js';

const LO = 0x7f000001;
const fds: number[] = [];

afterEach(() => {
  for (const fd of fds.splice(0)) io.close(fd);
});

function pattern(len: number, seed: number): Uint8Array {
  const u = new Uint8Array(len);
  for (let k = 0; k < len; k++) u[k] = (seed * 31 + k * 7) & 255;
  return u;
}

/** A GRO socket with a UdpDevice over it, and a sender that sends GSO datagrams to it. */
function setup(capacity: number): {
  dev: UdpDevice;
  b: Batch;
  send: (payload: Uint8Array, seg: number) => void;
  truncated: () => number;
  coalesced: () => number;
  port: number;
  srcPort: number;
} {
  let coalesced = 0;
  const rx = io.udpSocket('127.0.0.1', 0, { rcvbuf: 8 << 20, gro: true });
  const tx = io.udpSocket('127.0.0.1', 0, { sndbuf: 4 << 20 });
  fds.push(rx, tx);
  const port = io.sockName(rx).port;
  const b = new Batch(capacity, undefined, 0, GSO_SLOT_SIZE);
  const ctx = new DeviceContext(new PortCounters(MAX_PORTS));
  let trunc = 0;
  ctx.input.truncated = (n: number): void => void (trunc += n);
  ctx.input.udpGroReceived = (n: number): void => void (coalesced += n);
  const mac = new Uint8Array([2, 0, 0, 0, 0, 1]);
  const dev = new UdpDevice('up0', rx, b, ctx, new UdpUplinkCounters(), LO, port, () => mac, undefined, true);
  dev.port = 0;
  const sendBuf = new Uint8Array(new SharedArrayBuffer(65536));
  const send = (payload: Uint8Array, seg: number): void => {
    sendBuf.set(payload, 0);
    const status = new Int32Array(1);
    const n = io.writeBatchUdpGso(
      tx,
      sendBuf,
      Uint32Array.of(0),
      Uint32Array.of(payload.length),
      1,
      Uint16Array.of(seg),
      status,
      Uint32Array.of(LO),
      Uint16Array.of(port),
    );
    expect([n, status[0]]).toEqual([1, 0]);
  };
  return {
    dev,
    b,
    send,
    truncated: () => trunc,
    coalesced: () => coalesced,
    port,
    srcPort: io.sockName(tx).port,
  };
}

/** Reads (as the driver would: max datagrams the reservation allows) until `want` frames arrived. */
function readAll(dev: UdpDevice, b: Batch, want: number): number {
  let datagrams = 0;
  for (let tries = 0; b.count < want && tries < 50; tries++) {
    io.poll(Int32Array.of(dev.fd), 100);
    const max = Math.max(1, Math.floor((b.capacity - b.count) / dev.slotsPerFrame(1500)));
    const got = dev.read(b, max, 0, 0);
    expect(got).toBeGreaterThanOrEqual(0);
    datagrams += got;
  }
  return datagrams;
}

describe('UdpDevice with UDP_GRO (loopback)', () => {
  it('splits coalesced datagrams back into frames, in order, behind the outer header', () => {
    const { dev, b, send, port, srcPort, coalesced } = setup(1024);
    expect(dev.slotsPerFrame(1500)).toBeGreaterThanOrEqual(UDP_GRO_MAX_SEGS * 2);
    const big = pattern(10_500, 1); // 10 x 1000 + 500
    const plain = pattern(300, 2);
    send(big, 1000);
    send(plain, 0);
    const datagrams = readAll(dev, b, 12);
    expect(datagrams).toBeLessThanOrEqual(12);
    expect(b.count).toBe(12);
    expect(coalesced()).toBe(1); // the GSO send arrived as one datagram, the plain one as itself
    const want = [
      ...Array.from({ length: 11 }, (_, k) => big.subarray(k * 1000, Math.min(10_500, (k + 1) * 1000))),
      plain,
    ];
    for (let i = 0; i < 12; i++) {
      const f = b.u8.subarray(b.off[i], b.off[i] + b.len[i]);
      expect(b.len[i]).toBe(UDP_OUTER_LEN + want[i].length);
      expect(Buffer.from(f.subarray(UDP_OUTER_LEN)).equals(Buffer.from(want[i]))).toBe(true);
      expect([f[12], f[13], f[14 + 9]]).toEqual([0x08, 0x00, 17]); // IPv4, UDP
      expect((f[16] << 8) | f[17]).toBe(28 + want[i].length); // IPv4 total length
      expect(Array.from(f.subarray(26, 34))).toEqual([127, 0, 0, 1, 127, 0, 0, 1]);
      expect((f[34] << 8) | f[35]).toBe(srcPort);
      expect((f[36] << 8) | f[37]).toBe(port);
      expect(b.rxPort[i]).toBe(0);
    }
  });

  it('a batch too small for the reservation keeps what fits and counts the rest as truncated', () => {
    const { dev, b, send, truncated } = setup(8);
    send(pattern(11_000, 3), 1000); // 11 segments, 8 slots
    io.poll(Int32Array.of(dev.fd), 1000);
    expect(dev.read(b, 1, 0, 0)).toBe(1);
    expect(b.count).toBe(8);
    expect(truncated()).toBe(3);
    const first = pattern(11_000, 3);
    for (let i = 0; i < 8; i++) {
      const got = b.u8.subarray(b.off[i] + UDP_OUTER_LEN, b.off[i] + b.len[i]);
      expect(Buffer.from(got).equals(Buffer.from(first.subarray(i * 1000, (i + 1) * 1000)))).toBe(true);
    }
  });

  it('the daemon opens the udp uplink socket with UDP_GRO when asked (this kernel takes it)', () => {
    const a = openUdpUplinkSocket('127.0.0.1', 0, true);
    const b = openUdpUplinkSocket('127.0.0.1', 0, false);
    fds.push(a.fd, b.fd);
    expect([a.gro, a.refused, b.gro]).toEqual([true, undefined, false]);
  });
});
