// One BGP finite state machine per configured peer (RFC 4271 §8), with connection collision
// detection (§6.8), hold-time negotiation and graceful-restart awareness (RFC 4724). Time and
// sockets are injected (`Clock`, `BgpTransport`), so tests drive timers instantly and wire two FSMs
// back to back in memory. The FSM only speaks protocol: routes go up through `FsmHandlers` to the
// speaker/RIB. Peer-level states (Idle, Connect, Active) and per-connection states (OpenSent,
// OpenConfirm, Established) each have one handler function. Control (main) thread only.
// OPEN checks and negotiation are pure functions in open.ts; the public shapes are in fsm-types.ts.
import { CeaseSub, describeError, Err, type BgpError, type BgpMessage } from './types.js';
import type { FsmConfig, FsmHandlers, FsmState, Negotiated } from './fsm-types.js';
import {
  collisionErr,
  fsmErr,
  FsmSub,
  LARGE_HOLD_MS,
  localCapabilities,
  negotiate,
  validateOpen,
} from './open.js';
import {
  decodeMessage,
  encodeKeepalive,
  encodeNotification,
  encodeOpen,
  parseShutdownData,
  shutdownData,
} from './codec.js';
import { BgpFramer } from './framer.js';
import { formatIp4 } from '../../common/addr.js';
import {
  type BgpConnection,
  type BgpLogger,
  type BgpTransport,
  type Clock,
  silentLogger,
  systemClock,
} from './transport.js';

export { type BgpConnection, type BgpLogger, type BgpTransport, type Clock, silentLogger, systemClock };
export type { DownInfo, FsmConfig, FsmHandlers, FsmState, Negotiated } from './fsm-types.js';

/** How far a state is towards Established: the peer's state is the most advanced of its sessions'. */
const RANK: Record<FsmState, number> = {
  Idle: 0,
  Connect: 1,
  Active: 1,
  OpenSent: 2,
  OpenConfirm: 3,
  Established: 4,
};

/** Per-connection state once TCP is up. */
interface Session {
  conn: BgpConnection;
  state: 'OpenSent' | 'OpenConfirm' | 'Established';
  framer: BgpFramer;
  negotiated: Negotiated | null;
  holdTimer: unknown;
  keepaliveTimer: unknown;
  closed: boolean;
}

export class PeerFsm {
  private sessions: Session[] = [];
  private peerState: 'Idle' | 'Connect' | 'Active' = 'Idle';
  private enabled = false;
  private connectRetryTimer: unknown = null;
  private idleTimer: unknown = null;
  private pendingConnect: { cancel(): void } | null = null;
  private lastInfo = '';
  private lastState: FsmState = 'Idle';
  private sinceMs: number;

  constructor(
    readonly cfg: FsmConfig,
    private readonly clock: Clock,
    private readonly transport: BgpTransport,
    private readonly handlers: FsmHandlers,
    private readonly log: BgpLogger = silentLogger,
  ) {
    this.sinceMs = clock.now();
  }

  // ---- observation ----------------------------------------------------------------------

  get state(): FsmState {
    let best: FsmState = this.peerState;
    for (const s of this.sessions) if (RANK[s.state] > RANK[best]) best = s.state;
    return best;
  }

  /** When the reported state last changed (ms, clock time). */
  get since(): number {
    return this.sinceMs;
  }

  get info(): string {
    return this.lastInfo;
  }

  get established(): Negotiated | null {
    const s = this.sessions.find((x) => x.state === 'Established');
    return s ? s.negotiated : null;
  }

  // ---- administrative events ------------------------------------------------------------

  /** ManualStart (or ManualStart_with_PassiveTcpEstablishment for passive peers). */
  start(): void {
    if (this.enabled) return;
    this.enabled = true;
    this.handleIdle({ kind: 'start' });
  }

  /** ManualStop: Cease/Administrative Shutdown on every connection, back to Idle. */
  stop(message = 'shutdown', subcode: number = CeaseSub.ADMIN_SHUTDOWN): void {
    this.enabled = false;
    this.clearPeerTimers();
    for (const s of [...this.sessions])
      this.closeSession(s, `stopped: ${message}`, {
        code: Err.CEASE,
        subcode,
        data:
          subcode === CeaseSub.ADMIN_SHUTDOWN || subcode === CeaseSub.ADMIN_RESET
            ? shutdownData(message)
            : new Uint8Array(0),
        reason: message,
      });
    this.setPeerState('Idle', 'Shutdown');
  }

  /** Drops every connection without a NOTIFICATION (a crash, as the peer sees it). */
  abort(): void {
    this.enabled = false;
    this.clearPeerTimers();
    for (const s of [...this.sessions]) {
      s.closed = true;
      this.stopSessionTimers(s);
      s.conn.onData = s.conn.onClose = null;
      s.conn.destroy();
    }
    this.sessions = [];
    this.setPeerState('Idle', 'Aborted');
  }

  /** An inbound TCP connection from this peer's address (TcpConnectionConfirmed). */
  acceptInbound(conn: BgpConnection): void {
    if (!this.enabled) {
      conn.destroy();
      return;
    }
    if (this.sessions.length >= 2) {
      // At most one connection per direction (§6.8); a third is refused.
      conn.end();
      return;
    }
    if (this.sessions.length === 0) {
      if (this.peerState === 'Connect') this.handleConnect({ kind: 'inbound', conn });
      else if (this.peerState === 'Active') this.handleActive({ kind: 'inbound', conn });
      else this.handleIdle({ kind: 'inbound', conn });
    } else {
      this.openSession(conn); // collision: resolved when the OPEN arrives
    }
  }

  /** Sends pre-encoded UPDATE messages on the established session; false when there is none. */
  sendUpdates(msgs: Uint8Array[]): boolean {
    const s = this.sessions.find((x) => x.state === 'Established');
    if (!s) return false;
    for (const m of msgs) s.conn.send(m);
    if (s.conn.queued > this.cfg.maxQueuedBytes) {
      this.closeSession(s, 'peer is not reading (output queue full)', {
        code: Err.CEASE,
        subcode: CeaseSub.OUT_OF_RESOURCES,
        data: new Uint8Array(0),
        reason: 'output queue full',
      });
      return false;
    }
    return true;
  }

  /** Output octets still queued on the established session (for flow control). */
  get queued(): number {
    const s = this.sessions.find((x) => x.state === 'Established');
    return s ? s.conn.queued : 0;
  }

  // ---- peer-level states ----------------------------------------------------------------

  private handleIdle(ev: PeerEvent): void {
    switch (ev.kind) {
      case 'start':
      case 'idle-timer':
        if (!this.enabled) return;
        if (this.cfg.passive) {
          this.setPeerState('Active', this.lastInfo);
        } else {
          this.setPeerState('Connect', this.lastInfo);
          this.startConnect();
        }
        return;
      case 'inbound':
        // During the idle hold time after a failure we still take the peer's call.
        this.clearPeerTimers();
        this.openSession(ev.conn);
        return;
      default:
        return;
    }
  }

  private handleConnect(ev: PeerEvent): void {
    switch (ev.kind) {
      case 'connect-retry':
        this.startConnect();
        return;
      case 'connected':
        this.pendingConnect = null;
        this.clearPeerTimers();
        this.openSession(ev.conn);
        return;
      case 'connect-failed':
        this.pendingConnect = null;
        this.lastInfo = `Connect Socket: ${ev.error}`;
        this.armConnectRetry();
        this.setPeerState('Active', this.lastInfo);
        return;
      case 'inbound':
        this.cancelConnect();
        this.clearPeerTimers();
        this.openSession(ev.conn);
        return;
      default:
        return;
    }
  }

  private handleActive(ev: PeerEvent): void {
    switch (ev.kind) {
      case 'connect-retry':
        if (this.cfg.passive) return;
        this.setPeerState('Connect', this.lastInfo);
        this.startConnect();
        return;
      case 'inbound':
        this.clearPeerTimers();
        this.openSession(ev.conn);
        return;
      case 'connected':
        // a late outgoing connection completing after we fell back to Active
        this.pendingConnect = null;
        this.clearPeerTimers();
        this.openSession(ev.conn);
        return;
      default:
        return;
    }
  }

  private startConnect(): void {
    this.cancelConnect();
    this.armConnectRetry();
    const attempt = this.transport.connect((result) => {
      if (this.pendingConnect !== attempt) {
        if (!(result instanceof Error)) result.destroy();
        return;
      }
      const ev: PeerEvent =
        result instanceof Error
          ? { kind: 'connect-failed', error: result.message }
          : { kind: 'connected', conn: result };
      if (this.sessions.length > 0 && ev.kind === 'connected') {
        this.pendingConnect = null;
        this.openSession(ev.conn);
      } else if (this.peerState === 'Connect') this.handleConnect(ev);
      else if (this.peerState === 'Active') this.handleActive(ev);
      else if (ev.kind === 'connected') ev.conn.destroy();
    });
    this.pendingConnect = attempt;
  }

  private cancelConnect(): void {
    if (this.pendingConnect) {
      const p = this.pendingConnect;
      this.pendingConnect = null;
      p.cancel();
    }
  }

  private armConnectRetry(): void {
    if (this.connectRetryTimer !== null) this.clock.clearTimeout(this.connectRetryTimer);
    this.connectRetryTimer = this.clock.setTimeout(() => {
      this.connectRetryTimer = null;
      if (this.sessions.length) return;
      if (this.peerState === 'Connect') this.handleConnect({ kind: 'connect-retry' });
      else if (this.peerState === 'Active') this.handleActive({ kind: 'connect-retry' });
    }, this.cfg.connectRetryMs);
  }

  private clearPeerTimers(): void {
    if (this.connectRetryTimer !== null) this.clock.clearTimeout(this.connectRetryTimer);
    if (this.idleTimer !== null) this.clock.clearTimeout(this.idleTimer);
    this.connectRetryTimer = this.idleTimer = null;
  }

  // ---- connection-level states ----------------------------------------------------------

  private openSession(conn: BgpConnection): void {
    this.cancelConnectIfSameDirection(conn);
    const s: Session = {
      conn,
      state: 'OpenSent',
      framer: new BgpFramer(),
      negotiated: null,
      holdTimer: null,
      keepaliveTimer: null,
      closed: false,
    };
    this.sessions.push(s);
    conn.onData = (chunk) => this.onData(s, chunk);
    conn.onClose = (why) => this.onTcpClosed(s, why);
    const caps = localCapabilities(this.cfg);
    this.armHold(s, LARGE_HOLD_MS);
    this.emitState();
    conn.send(
      encodeOpen({ asn: this.cfg.localAs, holdTime: this.cfg.holdTime, bgpId: this.cfg.routerId, caps }),
    );
  }

  private cancelConnectIfSameDirection(conn: BgpConnection): void {
    if (!conn.inbound) this.pendingConnect = null;
  }

  private onData(s: Session, chunk: Uint8Array): void {
    if (s.closed) return;
    const msgs = s.framer.push(chunk);
    for (const m of msgs) {
      if (s.closed) return;
      const d = decodeMessage(
        m,
        s.negotiated?.codec ?? { as4: true, ibgp: this.cfg.peerAs === this.cfg.localAs },
      );
      if (!d.ok) {
        this.closeSession(
          s,
          `Sent: ${describeError(d.error.code, d.error.subcode)}: ${d.error.reason}`,
          d.error,
        );
        return;
      }
      this.dispatch(s, d.msg);
    }
    if (s.framer.error && !s.closed) {
      const e = s.framer.error;
      this.closeSession(s, `Sent: ${describeError(e.code, e.subcode)}: ${e.reason}`, e);
    }
  }

  private dispatch(s: Session, m: BgpMessage): void {
    if (m.type === 'notification') {
      const text =
        (m.code === Err.CEASE &&
          (m.subcode === CeaseSub.ADMIN_SHUTDOWN || m.subcode === CeaseSub.ADMIN_RESET) &&
          parseShutdownData(m.data)) ||
        '';
      this.closeSession(
        s,
        `Received: ${describeError(m.code, m.subcode)}${text ? `: ${text}` : ''}`,
        null,
        true,
      );
      return;
    }
    if (s.state === 'OpenSent') this.handleOpenSent(s, m);
    else if (s.state === 'OpenConfirm') this.handleOpenConfirm(s, m);
    else this.handleEstablished(s, m);
  }

  private handleOpenSent(s: Session, m: BgpMessage): void {
    if (m.type !== 'open') {
      this.fsmError(s, FsmSub.OPEN_SENT, `unexpected ${m.type} in OpenSent`);
      return;
    }
    const err = validateOpen(this.cfg, m);
    if (err) {
      this.closeSession(s, `Sent: ${describeError(err.code, err.subcode)}: ${err.reason}`, err);
      return;
    }
    s.negotiated = negotiate(this.cfg, m);
    if (!this.resolveCollision(s, m.bgpId)) return;
    s.state = 'OpenConfirm';
    s.conn.send(encodeKeepalive());
    this.armHold(s, s.negotiated.holdTime * 1000);
    this.armKeepalive(s);
    this.emitState();
  }

  private handleOpenConfirm(s: Session, m: BgpMessage): void {
    if (m.type !== 'keepalive') {
      this.fsmError(s, FsmSub.OPEN_CONFIRM, `unexpected ${m.type} in OpenConfirm`);
      return;
    }
    s.state = 'Established';
    this.armHold(s, (s.negotiated?.holdTime ?? 0) * 1000);
    this.lastInfo = 'Established';
    this.emitState();
    this.log.info(
      { peer: formatIp4(this.cfg.peerAddress), holdTime: s.negotiated?.holdTime, inbound: s.conn.inbound },
      'BGP session established',
    );
    this.handlers.onEstablished(s.negotiated!);
  }

  private handleEstablished(s: Session, m: BgpMessage): void {
    switch (m.type) {
      case 'keepalive':
        this.armHold(s, s.negotiated!.holdTime * 1000);
        return;
      case 'update':
        this.armHold(s, s.negotiated!.holdTime * 1000);
        if (m.errors)
          this.log.warn({ peer: formatIp4(this.cfg.peerAddress), errors: m.errors }, 'RFC 7606 UPDATE error');
        this.handlers.onUpdate(m);
        return;
      case 'route-refresh':
        this.armHold(s, s.negotiated!.holdTime * 1000);
        this.handlers.onRouteRefresh(m);
        return;
      default:
        this.fsmError(s, FsmSub.ESTABLISHED, `unexpected ${m.type} in Established`);
    }
  }

  /** Closes `s` with a Finite State Machine Error (RFC 6608 subcode: the state it happened in). */
  private fsmError(s: Session, subcode: number, reason: string): void {
    this.closeSession(s, `Sent: Finite State Machine Error: ${reason}`, fsmErr(subcode, reason));
  }

  /**
   * §6.8 collision detection, run when `s` has received the peer's OPEN. Returns false when `s`
   * itself was closed. An Established session wins, unless the peer negotiated graceful restart:
   * then a new connection means the peer restarted (RFC 4724 §4.2) and the old session goes.
   */
  private resolveCollision(s: Session, peerId: number): boolean {
    for (const o of [...this.sessions]) {
      if (o === s || o.closed) continue;
      if (o.state === 'Established') {
        if (o.negotiated?.peerGr) {
          this.closeSession(o, 'peer restarted (new connection while Established)', null, false, true);
          continue;
        }
        this.closeSession(
          s,
          'Sent: Cease/Connection Collision Resolution (already Established)',
          collisionErr(),
        );
        return false;
      }
      // Local ID lower: keep the peer's connection (inbound); otherwise keep ours (outbound).
      const keepInbound = this.cfg.routerId < peerId;
      const loser = s.conn.inbound === keepInbound ? o : s;
      this.closeSession(loser, 'Sent: Cease/Connection Collision Resolution', collisionErr());
      if (loser === s) return false;
    }
    return true;
  }

  private armHold(s: Session, ms: number): void {
    if (s.holdTimer !== null) this.clock.clearTimeout(s.holdTimer);
    s.holdTimer = null;
    if (ms <= 0) return;
    s.holdTimer = this.clock.setTimeout(() => {
      s.holdTimer = null;
      this.closeSession(s, 'Sent: Hold Timer Expired', {
        code: Err.HOLD_TIMER,
        subcode: 0,
        data: new Uint8Array(0),
        reason: 'hold timer expired',
      });
    }, ms);
  }

  private armKeepalive(s: Session): void {
    const ms = s.negotiated?.keepaliveMs ?? 0;
    if (ms <= 0) return;
    const tick = () => {
      if (s.closed) return;
      s.conn.send(encodeKeepalive());
      s.keepaliveTimer = this.clock.setTimeout(tick, ms);
    };
    s.keepaliveTimer = this.clock.setTimeout(tick, ms);
  }

  private stopSessionTimers(s: Session): void {
    if (s.holdTimer !== null) this.clock.clearTimeout(s.holdTimer);
    if (s.keepaliveTimer !== null) this.clock.clearTimeout(s.keepaliveTimer);
    s.holdTimer = s.keepaliveTimer = null;
  }

  private onTcpClosed(s: Session, why: string): void {
    if (s.closed) return;
    this.closeSession(s, `Socket: ${why}`, null, false);
  }

  /**
   * Ends one connection: optionally sends a NOTIFICATION, stops its timers, tells the handlers
   * when it was the Established one, and falls back to Idle (with automatic restart) when no
   * connection is left.
   */
  private closeSession(
    s: Session,
    reason: string,
    notify: BgpError | null,
    received = false,
    forceGraceful = false,
  ): void {
    if (s.closed) return;
    s.closed = true;
    this.stopSessionTimers(s);
    s.conn.onData = s.conn.onClose = null;
    if (notify) {
      s.conn.send(encodeNotification(notify.code, notify.subcode, notify.data));
      s.conn.end();
    } else if (received) {
      s.conn.end();
    } else {
      s.conn.destroy();
    }
    this.sessions = this.sessions.filter((x) => x !== s);
    const wasEstablished = s.state === 'Established';
    const peerGr = s.negotiated?.peerGr ?? null;
    const collision = notify?.code === Err.CEASE && notify.subcode === CeaseSub.COLLISION;
    if (!collision || wasEstablished) {
      this.lastInfo = reason;
      const level = wasEstablished ? 'warn' : 'info';
      this.log[level](
        { peer: formatIp4(this.cfg.peerAddress), state: s.state, reason, inbound: s.conn.inbound },
        'BGP session closed',
      );
    }
    if (wasEstablished) {
      const graceful = !!peerGr && (forceGraceful || (!notify && !received));
      this.handlers.onDown({ reason, graceful, restartTimeSec: peerGr?.restartTime ?? 0 });
    }
    if (this.sessions.length === 0) {
      if (this.enabled) {
        this.setPeerState('Idle', this.lastInfo);
        this.idleTimer = this.clock.setTimeout(() => {
          this.idleTimer = null;
          if (this.sessions.length === 0 && this.peerState === 'Idle')
            this.handleIdle({ kind: 'idle-timer' });
        }, this.cfg.idleHoldMs);
      } else {
        this.setPeerState('Idle', this.lastInfo);
      }
    } else {
      this.emitState();
    }
  }

  private setPeerState(st: 'Idle' | 'Connect' | 'Active', info: string): void {
    this.peerState = st;
    this.lastInfo = info;
    this.emitState();
  }

  private emitState(): void {
    const st = this.state;
    if (st !== this.lastState) {
      this.lastState = st;
      this.sinceMs = this.clock.now();
      this.handlers.onStateChange?.(st, this.lastInfo);
    }
  }
}

type PeerEvent =
  | { kind: 'start' }
  | { kind: 'idle-timer' }
  | { kind: 'connect-retry' }
  | { kind: 'connected'; conn: BgpConnection }
  | { kind: 'connect-failed'; error: string }
  | { kind: 'inbound'; conn: BgpConnection };
