// What the BGP FSM needs from the outside world, injected so tests can replace it: a clock for
// timers, a transport that makes outgoing TCP connections, the connection shape itself, and a
// structured logger (pino fits). The speaker supplies node:net and the system clock; tests supply
// an in-memory network and a fake clock. Control (main) thread only.
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** One TCP connection as the FSM sees it. The FSM sets the callbacks. */
export interface BgpConnection {
  readonly inbound: boolean;
  /** Queues bytes for sending. */
  send(bytes: Uint8Array): void;
  /** Flushes what was queued, then closes. No callbacks fire afterwards. */
  end(): void;
  /** Drops the connection at once. No callbacks fire afterwards. */
  destroy(): void;
  /** Octets queued but not yet accepted by the kernel (stall detection). */
  readonly queued: number;
  onData: ((chunk: Uint8Array) => void) | null;
  onClose: ((why: string) => void) | null;
}

export interface BgpTransport {
  /** Starts an outgoing connection; `done` gets the connection or the failure. */
  connect(done: (result: BgpConnection | Error) => void): { cancel(): void };
}

/** Structured logger; a pino Logger fits. */
export interface BgpLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: BgpLogger = { info() {}, warn() {}, debug() {}, error() {} };
