// Small-packet generator for the live benchmark: runs inside a workload namespace (started by
// live.bench.ts through `ip netns exec`) and blasts 60-byte Ethernet frames (64 on the wire with the
// FCS: IPv4 + UDP + 18 bytes of payload) out of `eth0` through an AF_PACKET socket, 64 frames per
// sendmmsg(), as fast as the kernel takes them or at a paced rate. The frames are what the workload's
// own stack would send to its gateway: src = the workload's MAC and IP, dst MAC = its gateway
// (169.254.1.1's neighbour entry), UDP to port 9 of the target (the receiver counts them at
// eth0 and drops them; see --sink). Source ports cycle over `--flows` values so a multi-queue TAP spreads them
// over every calitap worker. Prints one JSON line {offered, refused, seconds}.
// Usage: node dist/bench/live-gen.js --src IP --dst IP --dst-mac MAC --seconds S [--flows N] [--pps R]
//        node dist/bench/live-gen.js --sink 9 --seconds S   (in the receiving namespace)
import * as io from '../src/dataplane/devices/native.js';

const SLOT = 128;
const BATCH = 256;

function arg(name: string, dflt?: string): string {
  const i = process.argv.indexOf(name);
  if (i > 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  if (dflt === undefined) throw new Error(`live-gen: ${name} is required`);
  return dflt;
}

const ip4 = (s: string): number[] => s.split('.').map(Number);
const mac = (s: string): number[] => s.split(':').map((h) => parseInt(h, 16));

/**
 * `--sink PORT`: a UDP socket bound to PORT that is never read, with the smallest receive buffer, so
 * the receiver's kernel drops the generator's datagrams at the socket (cheaply, and without trying to
 * send ICMP port-unreachable for each one, which would bill the receiver with route lookups).
 */
function sink(port: number, seconds: number): void {
  const fd = io.udpSocket('0.0.0.0', port, { rcvbuf: 1 });
  process.stdout.write('ready\n');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, seconds * 1000);
  io.close(fd);
}

function main(): void {
  if (process.argv.includes('--sink')) {
    sink(Number(arg('--sink')), Number(arg('--seconds', '10')));
    return;
  }
  const src = ip4(arg('--src'));
  const dst = ip4(arg('--dst'));
  const dstMac = mac(arg('--dst-mac'));
  const seconds = Number(arg('--seconds', '2'));
  const flows = Math.max(1, Number(arg('--flows', '64')));
  const pps = Number(arg('--pps', '0'));
  const dev = arg('--dev', 'eth0');

  const arena = new Uint8Array(new SharedArrayBuffer(BATCH * SLOT));
  const offs = new Uint32Array(BATCH);
  const lens = new Uint32Array(BATCH);
  const status = new Int32Array(BATCH);
  const srcMac = mac(io.ifMac(dev));
  const dv = new DataView(arena.buffer);
  for (let i = 0; i < BATCH; i++) {
    const o = i * SLOT;
    offs[i] = o;
    lens[i] = 60;
    arena.set(dstMac, o);
    arena.set(srcMac, o + 6);
    dv.setUint16(o + 12, 0x0800);
    arena.set([0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0, ...src, ...dst], o + 14);
    let s = 0;
    for (let k = 14; k < 34; k += 2) s += dv.getUint16(o + k);
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    dv.setUint16(o + 24, ~s & 0xffff);
    dv.setUint16(o + 34, 10000 + (i % flows)); // source port: the flow
    dv.setUint16(o + 36, 9); // discard: nobody listens
    dv.setUint16(o + 38, 26);
    dv.setUint16(o + 40, 0); // no UDP checksum (allowed in IPv4)
  }
  // a filter that accepts nothing: we only send, and must not pay for copies of what eth0 receives
  const rejectAll = new Uint8Array([0x06, 0, 0, 0, 0, 0, 0, 0]);
  const fd = io.packetSocket(dev, { bpf: rejectAll, sndbuf: 4 << 20 });
  const pollFds = new Int32Array([fd]);

  let offered = 0;
  let refused = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  for (let now = t0; now < end; now = performance.now()) {
    let n = BATCH;
    if (pps > 0) {
      const due = Math.floor(((now - t0) / 1000) * pps) - offered;
      if (due <= 0) continue;
      n = Math.min(BATCH, due);
    }
    const done = io.writeBatch(fd, arena, offs, lens, n, status);
    for (let i = 0; i < done; i++) if (status[i] !== 0) refused++;
    offered += done;
    if (done < n) io.poll(pollFds, 1, io.POLLOUT);
  }
  const elapsed = (performance.now() - t0) / 1000;
  io.close(fd);
  process.stdout.write(JSON.stringify({ offered: offered - refused, refused, seconds: elapsed }) + '\n');
}

main();
