// The sample config (pcaps/sample-config.yaml) as node-a, for the dataplane property tests: its text,
// the MACs and addresses of its ports and workloads, and the tunnel frames node-a receives from its
// peers (VXLAN from node-c's VTEP to w3, IPIP from node-b to w1).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ip4, udp } from './frames.js';

export const SAMPLE = fs.readFileSync(
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'pcaps', 'sample-config.yaml'),
  'utf8',
);

export const S = {
  up: '52:54:00:00:00:0a',
  gw: '52:54:00:00:00:fe',
  w1: { mac: '0a:58:0a:41:00:02', ip: '10.65.0.2' },
  w2: { mac: '0a:58:0a:41:00:03', ip: '10.65.0.3' },
  w3: { mac: '0a:58:0a:42:00:02', ip: '10.66.0.2' },
  vtepA: '66:07:02:c1:cc:60',
  vtepC: '66:1a:b9:f1:6e:af',
};

/** What node-a's uplink receives through its tunnels: [VXLAN to w3, IPIP to w1]. */
export function sampleTunnelFrames(): Uint8Array[] {
  const innerV = udp({ ethSrc: S.vtepC, ethDst: S.vtepA, src: '10.66.0.130', dst: S.w3.ip });
  const vx = new Uint8Array(8 + innerV.length);
  vx.set([0x08, 0, 0, 0, 0x00, 0x10, 0x00, 0]); // VXLAN, VNI 4096
  vx.set(innerV, 8);
  const innerI = udp({ ethSrc: S.gw, src: '10.65.0.130', dst: S.w1.ip }).slice(14);
  return [
    udp({
      ethSrc: S.gw,
      ethDst: S.up,
      src: '10.1.0.3',
      dst: '10.0.0.1',
      sport: 33333,
      dport: 4789,
      payload: vx,
    }),
    ip4({ ethSrc: S.gw, ethDst: S.up, ipSrc: '10.1.0.3', ipDst: '10.0.0.1', proto: 4, l4: innerI }),
  ];
}
