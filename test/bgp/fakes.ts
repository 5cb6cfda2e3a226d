// In-memory clock and network for FSM tests: timers run only when the test advances time, and
// bytes move only when the network is pumped, so every test is deterministic and instant.
import type { BgpConnection, BgpTransport, Clock } from '../../src/control/bgp/fsm.js';

export class FakeClock implements Clock {
  private t = 0;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  /** called between timers so queued bytes are delivered in time order */
  pump: () => void = () => {};

  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  /** Advances time by `ms`, running due timers in order and pumping the network between them. */
  advance(ms: number): void {
    const end = this.t + ms;
    this.pump();
    while (true) {
      let next: [number, { at: number; fn: () => void }] | null = null;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
      this.pump();
    }
    this.t = end;
    this.pump();
  }
}

export class FakeConn implements BgpConnection {
  peer!: FakeConn;
  onData: ((chunk: Uint8Array) => void) | null = null;
  onClose: ((why: string) => void) | null = null;
  closed = false;
  /** everything this end sent, for assertions */
  sent: Uint8Array[] = [];
  /** when true, bytes this end sends are held (the peer stalls reading) */
  blocked = false;
  constructor(
    readonly inbound: boolean,
    private readonly net: FakeNet,
  ) {}
  get queued(): number {
    return 0;
  }
  send(bytes: Uint8Array): void {
    if (this.closed) return;
    this.sent.push(bytes);
    const deliver = () => {
      if (this.blocked || this.peer.closed) return;
      // not accepted yet: try again after whatever else is queued
      if (!this.peer.onData) this.net.enqueue(deliver);
      else this.peer.onData(bytes);
    };
    this.net.enqueue(deliver);
  }
  /** The network breaks: both ends see the connection close. */
  fail(): void {
    if (this.closed) return;
    this.closeBoth('network failure');
    this.net.enqueue(() => this.onClose?.('network failure'));
  }
  end(): void {
    this.closeBoth('closed by peer');
  }
  destroy(): void {
    this.closeBoth('connection reset');
  }
  private closeBoth(why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.net.enqueue(() => {
      if (!this.peer.closed) {
        this.peer.closed = true;
        this.peer.onClose?.(why);
      }
    });
  }
}

/** Nodes addressed by name; `listen` registers an acceptor; `transport(from, to)` dials. */
export class FakeNet {
  private queue: (() => void)[] = [];
  private acceptors = new Map<string, (c: FakeConn) => void>();
  conns: FakeConn[] = [];
  /** accept inbound connections one step later, so simultaneous dials collide (§6.8) */
  slowAccept = false;
  enqueue(fn: () => void): void {
    this.queue.push(fn);
  }
  run(): void {
    for (let i = 0; i < 100_000 && this.queue.length; i++) this.queue.shift()!();
  }
  listen(name: string, accept: ((c: FakeConn) => void) | null): void {
    if (accept) this.acceptors.set(name, accept);
    else this.acceptors.delete(name);
  }
  /** Creates a connected pair; returns [dialer end, listener end]. */
  pair(): [FakeConn, FakeConn] {
    const a = new FakeConn(false, this);
    const b = new FakeConn(true, this);
    a.peer = b;
    b.peer = a;
    this.conns.push(a, b);
    return [a, b];
  }
  transport(to: string): BgpTransport & { attempts: number } {
    const t = {
      attempts: 0,
      connect: (done: (r: BgpConnection | Error) => void) => {
        t.attempts++;
        let cancelled = false;
        this.enqueue(() => {
          if (cancelled) return;
          const acc = this.acceptors.get(to);
          if (!acc) {
            done(new Error('Connection refused'));
            return;
          }
          const [a, b] = this.pair();
          done(a);
          if (this.slowAccept) this.enqueue(() => acc(b));
          else acc(b);
        });
        return { cancel: () => (cancelled = true) };
      },
    };
    return t;
  }
}
