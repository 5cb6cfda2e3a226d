// A scripted BGP peer over a real TCP socket, for negative tests: it sends exactly the bytes a test
// gives it and records every message the speaker sends back.
import net from 'node:net';
import { emptyCaps } from '../../src/control/bgp/caps.js';
import { decodeMessage, encodeKeepalive, encodeOpen } from '../../src/control/bgp/codec.js';
import { BgpFramer } from '../../src/control/bgp/framer.js';
import type { BgpMessage, Capabilities } from '../../src/control/bgp/types.js';
import { waitUntil } from '../../bench/bgp-lab.js';

export { waitUntil };

export class RawPeer {
  readonly received: BgpMessage[] = [];
  closed = false;
  private framer = new BgpFramer();
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      for (const m of this.framer.push(new Uint8Array(c))) {
        const d = decodeMessage(m, { as4: true, ibgp: true });
        if (d.ok) this.received.push(d.msg);
      }
    });
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
  }

  static async connect(host: string, port: number, localAddress: string): Promise<RawPeer> {
    const s = net.connect({ host, port, localAddress });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    return new RawPeer(s);
  }

  send(b: Uint8Array): void {
    this.socket.write(b);
  }

  sendOpen(opts: { asn: number; bgpId: number; holdTime?: number; caps?: Partial<Capabilities> }): void {
    const caps = { ...emptyCaps(), multiprotocol: [{ afi: 1, safi: 1 }], as4: opts.asn, ...opts.caps };
    this.send(encodeOpen({ asn: opts.asn, holdTime: opts.holdTime ?? 90, bgpId: opts.bgpId, caps }));
  }

  /** OPEN + KEEPALIVE, then waits until the speaker's KEEPALIVE shows the session is up. */
  async establish(asn: number, bgpId: number, caps?: Partial<Capabilities>): Promise<void> {
    this.sendOpen({ asn, bgpId, caps });
    this.send(encodeKeepalive());
    await waitUntil(
      () => this.received.some((m) => m.type === 'keepalive'),
      5000,
      'KEEPALIVE from the speaker',
    );
  }

  notification(): Extract<BgpMessage, { type: 'notification' }> | undefined {
    return this.received.find((m) => m.type === 'notification') as Extract<
      BgpMessage,
      { type: 'notification' }
    >;
  }

  close(): void {
    this.socket.destroy();
  }
}
