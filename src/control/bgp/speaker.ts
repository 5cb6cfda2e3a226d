// The BGP speaker: a TCP listener and per-peer connectors (node:net) feeding one PeerFsm per
// configured peer, the shared Rib (import, best path, export) and graceful-restart timers. The
// daemon builds it from plain options (speaker-options.ts; daemon/bgp-glue.ts maps Calico's), calls
// originate/withdraw for the node's affine blocks and listens to onRouteChange to program the FIB.
// Each peer's socket, framer and FSM are its own: a peer that floods, stalls or sends garbage only
// loses its own session. Control (main) thread only.
import net from 'node:net';
import { formatIp4, formatPrefix4, parseIp4, type Prefix4 } from '../../common/addr.js';
import { BgpSpeakerError } from '../../common/errors.js';
import { buildUpdates, encodeEndOfRib, encodeRouteRefresh, isEndOfRib } from './codec.js';
import {
  type BgpConnection,
  type BgpLogger,
  type BgpTransport,
  type Clock,
  type Negotiated,
  PeerFsm,
  silentLogger,
  systemClock,
} from './fsm.js';
import { type BestRoute, Rib, type RibPeer } from './rib.js';
import { CeaseSub } from './types.js';
import {
  BGP_PORT,
  DEFAULT_CONNECT_RETRY,
  DEFAULT_GR_TIME,
  DEFAULT_HOLD_TIME,
  DEFAULT_IDLE_HOLD,
  DEFAULT_STALE_PATH_TIME,
  MAX_GR_TIME,
  MAX_HOLD_TIME,
  type BgpSpeakerOptions,
  type PeerOptions,
  type PeerStatus,
  type RouteChangeListener,
} from './speaker-options.js';

export type {
  BgpSpeakerOptions,
  PeerOptions,
  PeerStatus,
  PeerType,
  RouteChangeListener,
} from './speaker-options.js';
export { BGP_PORT } from './speaker-options.js';

interface PeerEntry {
  opts: PeerOptions;
  address: number;
  fsm: PeerFsm;
  rib: RibPeer;
  grTimer: unknown;
  eorSent: boolean;
  flushing: boolean;
  updatesIn: number;
  refreshesIn: number;
}

/** Queued output (bytes) above which a peer's export pauses until its socket drains. */
const HIGH_WATER = 1 << 20;
/** How long a paused export waits before it looks at the socket again (ms, on the injected clock). */
const DRAIN_RETRY_MS = 20;
/** Prefixes taken from the RIB per UPDATE batch. */
const BATCH = 4000;
/** Queued output (bytes) at which a peer counts as stalled (Cease/Out of Resources). */
const MAX_QUEUED_BYTES = 64 << 20;
/** stop(): how long sockets get to flush the NOTIFICATION before they are destroyed (ms). */
const STOP_GRACE_MS = 2000;
const STOP_POLL_MS = 10;

function ip(text: string, what: string): number {
  const v = parseIp4(text);
  if (v === null)
    throw new BgpSpeakerError('bgp-invalid', `BGP ${what} is not an IPv4 address: ${JSON.stringify(text)}`);
  return v;
}

export class BgpSpeaker {
  private readonly peers = new Map<number, PeerEntry>();
  private readonly rib: Rib;
  private readonly listeners: RouteChangeListener[] = [];
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private readonly clock: Clock;
  private readonly log: BgpLogger;
  private readonly routerId: number;
  private readonly listenAddress: number;
  private flushScheduled = false;
  private stopped = false;

  constructor(readonly options: BgpSpeakerOptions) {
    this.routerId = ip(options.routerId, 'router ID');
    this.listenAddress = ip(options.listenAddress ?? '0.0.0.0', 'listen address');
    const hold = options.holdTime ?? DEFAULT_HOLD_TIME;
    if (hold === 1 || hold === 2 || hold < 0 || hold > MAX_HOLD_TIME)
      throw new BgpSpeakerError('bgp-invalid', `BGP hold time must be 0 or 3..65535 seconds, got ${hold}`);
    if (!Number.isInteger(options.localAs) || options.localAs < 1 || options.localAs > 0xffffffff)
      throw new BgpSpeakerError('bgp-invalid', `BGP local AS is invalid: ${options.localAs}`);
    this.clock = options.clock ?? systemClock;
    this.log = options.logger ?? silentLogger;
    const nextHop = options.nextHop
      ? ip(options.nextHop, 'next hop')
      : this.listenAddress !== 0
        ? this.listenAddress
        : this.routerId;
    this.rib = new Rib(
      {
        localAs: options.localAs,
        routerId: this.routerId,
        nextHop,
        clusterId: options.clusterId ? ip(options.clusterId, 'cluster ID') : undefined,
        exportLearnedToEbgp: options.exportLearnedToEbgp,
      },
      (prefix, best) => {
        for (const l of this.listeners) l(prefix, best);
      },
    );
    if (options.onRouteChange) this.listeners.push(options.onRouteChange);
    for (const p of options.peers) this.addPeer(p);
  }

  // ---- public API -------------------------------------------------------------------------

  /** Registers another route-change listener (called for every best-path change, null = gone). */
  onRouteChange(fn: RouteChangeListener): void {
    this.listeners.push(fn);
  }

  /** Starts listening (unless `listen: false`) and starts every peer's FSM. */
  async start(): Promise<void> {
    if (this.options.listen !== false) {
      const server = net.createServer((s) => this.onInbound(s));
      this.server = server;
      await new Promise<void>((resolve, reject) => {
        server.once('error', (e) =>
          reject(
            new BgpSpeakerError(
              'bgp-listen',
              `BGP cannot listen on ${formatIp4(this.listenAddress)}:${this.options.listenPort ?? BGP_PORT}: ${e.message}`,
            ),
          ),
        );
        server.listen(
          { host: formatIp4(this.listenAddress), port: this.options.listenPort ?? BGP_PORT },
          () => resolve(),
        );
      });
      server.on('error', (e) => this.log.error({ err: e.message }, 'BGP listener error'));
    }
    for (const p of this.peers.values()) p.fsm.start();
    this.log.info(
      { routerId: this.options.routerId, localAs: this.options.localAs, peers: this.peers.size },
      'BGP speaker started',
    );
  }

  /** The port actually listened on (useful with listenPort 0). */
  get port(): number {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  /** Sends Cease/Administrative Shutdown to every peer, closes the listener and all sockets. */
  async stop(message = 'calitap shutting down'): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const p of this.peers.values()) {
      p.fsm.stop(message);
      this.clearGr(p);
    }
    await this.closeAll(STOP_GRACE_MS);
    this.log.info({}, 'BGP speaker stopped');
  }

  /** Drops every connection without a NOTIFICATION, like a crash (peers may keep our routes, RFC 4724). */
  async abort(): Promise<void> {
    this.stopped = true;
    for (const p of this.peers.values()) {
      p.fsm.abort();
      this.clearGr(p);
    }
    await this.closeAll(0);
  }

  private async closeAll(graceMs: number): Promise<void> {
    const server = this.server;
    this.server = null;
    const closed = server ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve();
    const deadline = Date.now() + graceMs;
    while (graceMs > 0 && [...this.sockets].some((s) => !s.destroyed) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, STOP_POLL_MS));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  /** Announces one of our blocks to every peer (ORIGIN IGP, next hop = our node IP). */
  originate(prefix: Prefix4 | string): void {
    this.rib.originate(this.toPrefix(prefix));
    this.scheduleFlush();
  }

  /** Stops announcing one of our blocks. */
  withdraw(prefix: Prefix4 | string): void {
    this.rib.withdraw(this.toPrefix(prefix));
    this.scheduleFlush();
  }

  /** Current best route for a prefix, or null. */
  lookup(prefix: Prefix4 | string): BestRoute | null {
    return this.rib.lookup(this.toPrefix(prefix));
  }

  /** All best routes (Loc-RIB). */
  routes(): IterableIterator<BestRoute> {
    return this.rib.routes();
  }

  get routeCount(): number {
    return this.rib.size;
  }

  status(): PeerStatus[] {
    return [...this.peers.values()].map((p) => {
      const st = p.fsm.state;
      const info =
        st === 'Established'
          ? 'Established'
          : p.fsm.info && st !== 'Idle'
            ? `${st} ${p.fsm.info}`
            : p.fsm.info || st;
      return {
        peerAddress: formatIp4(p.address),
        peerType: p.opts.peerType ?? 'global',
        state: st === 'Established' ? 'up' : this.stopped ? 'down' : 'start',
        since: new Date(p.fsm.since).toISOString(),
        info,
        fsmState: st,
        asNumber: p.opts.asNumber,
        routesReceived: p.rib.routeCount,
        routesAdvertised: p.rib.adjOut?.size ?? 0,
        updatesReceived: p.updatesIn,
        refreshesReceived: p.refreshesIn,
      };
    });
  }

  /** Adds a peer at run time (starts it when the speaker runs). */
  addPeer(o: PeerOptions): void {
    const address = ip(o.peerAddress, 'peer address');
    if (this.peers.has(address))
      throw new BgpSpeakerError('bgp-invalid', `BGP peer ${o.peerAddress} configured twice`);
    if (o.holdTime === 1 || o.holdTime === 2)
      throw new BgpSpeakerError('bgp-invalid', `BGP hold time for ${o.peerAddress} must not be 1 or 2`);
    const ribPeer = this.rib.addPeer(address, o.asNumber);
    const grTime = this.options.gracefulRestartTime ?? DEFAULT_GR_TIME;
    const log = this.log;
    const entry: PeerEntry = {
      opts: o,
      address,
      rib: ribPeer,
      grTimer: null,
      eorSent: false,
      flushing: false,
      updatesIn: 0,
      refreshesIn: 0,
      fsm: null as unknown as PeerFsm,
    };
    entry.fsm = new PeerFsm(
      {
        localAs: this.options.localAs,
        routerId: this.routerId,
        peerAs: o.asNumber,
        peerAddress: address,
        passive: o.passive ?? false,
        holdTime: o.holdTime ?? this.options.holdTime ?? DEFAULT_HOLD_TIME,
        connectRetryMs: (this.options.connectRetry ?? DEFAULT_CONNECT_RETRY) * 1000,
        idleHoldMs: (this.options.idleHoldTime ?? DEFAULT_IDLE_HOLD) * 1000,
        gracefulRestart:
          grTime > 0
            ? {
                restartTime: Math.min(grTime, MAX_GR_TIME),
                restarting: this.options.restarting ?? false,
                notification: false,
                afis: [{ afi: 1, safi: 1, forwarding: this.options.restarting ?? false }],
              }
            : null,
        maxQueuedBytes: MAX_QUEUED_BYTES,
      },
      this.clock,
      this.transportFor(o, address),
      {
        onEstablished: (n) => this.onEstablished(entry, n),
        onUpdate: (u) => {
          entry.updatesIn++;
          if (isEndOfRib(u)) {
            const purged = this.rib.purgeStale(entry.rib);
            this.clearGr(entry);
            if (purged) log.info({ peer: o.peerAddress, purged }, 'End-of-RIB: stale routes purged');
          } else {
            this.rib.applyUpdate(entry.rib, u);
          }
          this.scheduleFlush();
        },
        onRouteRefresh: (r) => {
          entry.refreshesIn++;
          // subtypes 1/2 are RFC 7313 BoRR/EoRR markers, not requests (we do not offer enhanced refresh)
          if (r.afi !== 1 || r.safi !== 1 || r.subtype !== 0) return;
          log.info({ peer: o.peerAddress }, 'ROUTE-REFRESH received: re-advertising');
          this.rib.refreshPeer(entry.rib);
          entry.eorSent = false;
          this.scheduleFlush();
        },
        onDown: (d) => {
          this.rib.peerDown(entry.rib, d.graceful);
          entry.flushing = false;
          if (d.graceful) {
            log.warn(
              {
                peer: o.peerAddress,
                reason: d.reason,
                restartTime: d.restartTimeSec,
                stale: entry.rib.routeCount,
              },
              'BGP session down; keeping routes as stale (graceful restart)',
            );
            this.armGr(entry, d.restartTimeSec, 'restart time expired');
          } else {
            log.warn({ peer: o.peerAddress, reason: d.reason }, 'BGP session down; routes withdrawn');
          }
          this.scheduleFlush();
        },
      },
      log,
    );
    this.peers.set(address, entry);
    if (this.server && !this.stopped) entry.fsm.start();
  }

  /** Removes a peer: Cease/Peer De-configured, its routes withdrawn. */
  removePeer(peerAddress: string): void {
    const address = ip(peerAddress, 'peer address');
    const p = this.peers.get(address);
    if (!p) return;
    p.fsm.stop('peer de-configured', CeaseSub.PEER_DECONFIGURED);
    this.clearGr(p);
    this.rib.removePeer(p.rib);
    this.peers.delete(address);
    this.scheduleFlush();
  }

  /** Asks a peer to resend its routes (RFC 2918); false when not Established or not supported. */
  requestRouteRefresh(peerAddress: string): boolean {
    const p = this.peers.get(ip(peerAddress, 'peer address'));
    const n = p?.fsm.established;
    if (!p || !n || !n.routeRefresh) return false;
    return p.fsm.sendUpdates([encodeRouteRefresh()]);
  }

  // ---- internals --------------------------------------------------------------------------

  private toPrefix(p: Prefix4 | string): Prefix4 {
    if (typeof p !== 'string') return p;
    const slash = p.indexOf('/');
    const addr = parseIp4(p.slice(0, slash));
    const len = Number(p.slice(slash + 1));
    if (slash < 0 || addr === null || !Number.isInteger(len) || len < 0 || len > 32)
      throw new BgpSpeakerError('bgp-invalid', `not an IPv4 prefix: ${JSON.stringify(p)}`);
    return { addr: len === 0 ? 0 : (addr & ((0xffffffff << (32 - len)) >>> 0)) >>> 0, len };
  }

  private onEstablished(p: PeerEntry, n: Negotiated): void {
    this.clearGr(p);
    this.rib.peerUp(p.rib, n.peerRouterId);
    p.eorSent = false;
    if (p.rib.stale) {
      const fwd = n.peerGr?.afis.some((a) => a.afi === 1 && a.safi === 1 && a.forwarding);
      if (!fwd) {
        const purged = this.rib.purgeStale(p.rib);
        this.log.info(
          { peer: p.opts.peerAddress, purged },
          'peer did not keep forwarding state: stale routes purged',
        );
      } else {
        this.armGr(p, this.options.stalePathTime ?? DEFAULT_STALE_PATH_TIME, 'no End-of-RIB in time');
      }
    }
    this.scheduleFlush();
  }

  private armGr(p: PeerEntry, seconds: number, why: string): void {
    this.clearGr(p);
    p.grTimer = this.clock.setTimeout(() => {
      p.grTimer = null;
      const purged = this.rib.purgeStale(p.rib);
      if (purged) this.log.warn({ peer: p.opts.peerAddress, purged, why }, 'stale routes purged');
      this.scheduleFlush();
    }, seconds * 1000);
  }

  private clearGr(p: PeerEntry): void {
    if (p.grTimer !== null) this.clock.clearTimeout(p.grTimer);
    p.grTimer = null;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      for (const p of this.peers.values()) this.flushPeer(p);
    });
  }

  /** Sends queued export changes to one peer in batches, pausing while its socket is backed up. */
  private flushPeer(p: PeerEntry): void {
    const n = p.fsm.established;
    if (!n || p.flushing) return;
    while (this.rib.pendingCount(p.rib) > 0) {
      if (p.fsm.queued > HIGH_WATER) {
        p.flushing = true;
        this.clock.setTimeout(() => {
          p.flushing = false;
          this.flushPeer(p);
        }, DRAIN_RETRY_MS);
        return;
      }
      const { withdrawn, groups } = this.rib.takeUpdates(p.rib, BATCH);
      const msgs = buildUpdates(withdrawn, groups, n.codec);
      if (msgs.length && !p.fsm.sendUpdates(msgs)) return;
    }
    if (!p.eorSent) {
      p.eorSent = true;
      p.fsm.sendUpdates([encodeEndOfRib()]);
    }
  }

  private onInbound(s: net.Socket): void {
    const remote = (s.remoteAddress ?? '').replace(/^::ffff:/, '');
    const addr = parseIp4(remote);
    const p = addr === null ? undefined : this.peers.get(addr);
    if (!p || this.stopped) {
      this.log.info({ remote }, 'BGP connection from an unconfigured address refused');
      s.destroy();
      return;
    }
    p.fsm.acceptInbound(this.wrap(s, true));
  }

  private transportFor(o: PeerOptions, address: number): BgpTransport {
    return {
      connect: (done) => {
        const local = this.listenAddress !== 0 ? formatIp4(this.listenAddress) : undefined;
        const s = net.connect({ host: formatIp4(address), port: o.port ?? BGP_PORT, localAddress: local });
        let settled = false;
        const timer = setTimeout(
          () => {
            if (settled) return;
            settled = true;
            s.destroy();
            done(new BgpSpeakerError('bgp-connect', 'connection timed out'));
          },
          Math.max(1000, (this.options.connectRetry ?? DEFAULT_CONNECT_RETRY) * 1000),
        );
        timer.unref();
        s.once('connect', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          done(this.wrap(s, false));
        });
        s.once('error', (e: NodeJS.ErrnoException) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          s.destroy();
          done(new BgpSpeakerError('bgp-connect', describeSocketError(e), { cause: e }));
        });
        return {
          cancel: () => {
            settled = true;
            clearTimeout(timer);
            s.destroy();
          },
        };
      },
    };
  }

  private wrap(s: net.Socket, inbound: boolean): BgpConnection {
    this.sockets.add(s);
    s.setNoDelay(true);
    let closeReason = 'connection closed by peer';
    const conn: BgpConnection = {
      inbound,
      send: (b) => {
        if (!s.destroyed && s.writable) s.write(b);
      },
      end: () => {
        conn.onData = conn.onClose = null;
        s.end();
        // do not linger if the peer never closes its side
        setTimeout(() => s.destroy(), 3000).unref();
      },
      destroy: () => {
        conn.onData = conn.onClose = null;
        s.destroy();
      },
      get queued() {
        return s.writableLength;
      },
      onData: null,
      onClose: null,
    };
    s.on('data', (chunk: Buffer) =>
      conn.onData?.(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)),
    );
    s.on('error', (e: NodeJS.ErrnoException) => (closeReason = describeSocketError(e)));
    s.on('close', () => {
      this.sockets.delete(s);
      conn.onClose?.(closeReason);
    });
    return conn;
  }

  /** For tests and logs: the prefixes we originate. */
  originated(): string[] {
    return this.rib.originatedPrefixes().map(formatPrefix4);
  }
}

function describeSocketError(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ECONNREFUSED':
      return 'Connection refused';
    case 'ECONNRESET':
      return 'Connection reset by peer';
    case 'EHOSTUNREACH':
      return 'No route to host';
    case 'ENETUNREACH':
      return 'Network unreachable';
    case 'ETIMEDOUT':
      return 'Connection timed out';
    default:
      return e.message;
  }
}
