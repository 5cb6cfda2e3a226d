// ip4-arp: packets whose uplink next hop has no MAC yet wait here while we ask for it.
//
// Holds at most `arpHoldPerNeighbor` packets per neighbour (copies, in a worker-local pool: the batch
// slots are reused every round), sends an ARP request at once and again every `arpInterval` seconds,
// and after `arpRetries` unanswered requests drops what it held (counted). Its poll (run by the graph
// after every dispatch) releases what it held for neighbours that became resolved: learned by
// arp-reply in this batch, or by another worker (the neighbour table is shared), so held packets go
// out in the same round as the ARP reply. Owned by one worker.
import { GraphNode, drop, event, type NodeDecl } from '../graph.js';
import { PKT_LOCAL, SLOT_DATA, type Batch } from '../packet.js';
import type { DataplaneEnv } from '../env.js';
import type { NeighborTable } from '../../tables/neighbor.js';
import type { AdjacencyTable } from '../../tables/adjacency.js';
import { emitArpRequest } from '../../wire/arp.js';
import { formatIp4 } from '../../../common/addr.js';
import { PORT_UPLINK } from '../ports.js';

const R_HELD = 0;
const R_HOLD_FULL = 1;
const R_REQUEST = 2;
const R_TIMEOUT = 3;
const R_RELEASED = 4;
const R_AT_EXIT = 5;
const R_NO_SLOT = 6;
const R_TOO_BIG = 7;
const R_STALE = 8;
const N_REWRITE = 0;
const N_OUTPUT = 1;

/** Packets held across all neighbours by one worker. */
const HOLD_SLOTS = 256;

export class Ip4Arp extends GraphNode {
  readonly decl: NodeDecl = {
    name: 'ip4-arp',
    next: ['ip4-rewrite', 'interface-output'],
    reasons: [
      event('held'),
      drop('hold-full'),
      event('request-sent'),
      drop('arp-timeout'),
      event('released'),
      drop('unresolved-at-exit'),
      drop('batch-full'),
      drop('too-big-to-hold'),
      // the route or neighbour a held packet waited for was removed (its table entry reused)
      drop('route-changed'),
    ],
  };
  private readonly nbr: NeighborTable;
  private readonly adj: AdjacencyTable;
  private readonly pool = new Uint8Array(HOLD_SLOTS * SLOT_DATA);
  private readonly hLen = new Uint16Array(HOLD_SLOTS);
  private readonly hAdj = new Uint32Array(HOLD_SLOTS);
  private readonly hRx = new Uint16Array(HOLD_SLOTS);
  private readonly hFlags = new Uint8Array(HOLD_SLOTS);
  /** adjacency generation when held (tables/adjacency.ts gen: an index kept across rounds) */
  private readonly hGen = new Uint32Array(HOLD_SLOTS);
  private readonly hNext = new Int32Array(HOLD_SLOTS);
  private freeHead = 0;
  private readonly head: Int32Array;
  private readonly tail: Int32Array;
  private readonly held: Uint8Array;
  private readonly tries: Uint8Array;
  private readonly lastReq: Float64Array;
  /** neighbour generation when resolution started (tables/neighbor.ts gen) */
  private readonly nGen: Uint32Array;
  /** neighbours with packets waiting (changes only when resolution starts or ends) */
  private readonly pending = new Set<number>();
  private now = 0;
  private readonly mac: Uint8Array;
  private srcIp: number;

  constructor(
    env: DataplaneEnv,
    private p = env.params,
  ) {
    super();
    this.nbr = env.nbr;
    this.adj = env.adj;
    const c = env.nbr.capacity;
    this.head = new Int32Array(c).fill(-1);
    this.tail = new Int32Array(c).fill(-1);
    this.held = new Uint8Array(c);
    this.tries = new Uint8Array(c);
    this.lastReq = new Float64Array(c);
    this.nGen = new Uint32Array(c);
    for (let s = 0; s < HOLD_SLOTS; s++) this.hNext[s] = s + 1 < HOLD_SLOTS ? s + 1 : -1;
    this.mac = env.ports.ourMacOf[PORT_UPLINK];
    this.srcIp = env.params.nodeIp;
  }

  override setParams(env: DataplaneEnv): void {
    this.p = env.params;
    this.srcIp = env.params.nodeIp;
  }

  override process(b: Batch, q: Uint16Array, n: number): void {
    const rewrite = this.next[N_REWRITE];
    for (let k = 0; k < n; k++) {
      const i = q[k];
      const nb = this.adj.neighbor[b.adj[i]];
      if (this.nbr.resolved(nb)) {
        rewrite.enter(b, i);
        continue;
      }
      const s = this.freeHead;
      if (b.len[i] > SLOT_DATA) {
        // a GSO super-frame does not fit a hold slot: TCP sends it again once the neighbour answers
        this.drop(b, i, R_TOO_BIG);
        continue;
      }
      if (s < 0 || this.held[nb] >= this.p.arpHoldPerNeighbor) {
        this.drop(b, i, R_HOLD_FULL);
        continue;
      }
      this.freeHead = this.hNext[s];
      this.pool.set(b.u8.subarray(b.off[i], b.off[i] + b.len[i]), s * SLOT_DATA);
      this.hLen[s] = b.len[i];
      this.hAdj[s] = b.adj[i];
      this.hRx[s] = b.rxPort[i];
      this.hFlags[s] = b.flags[i];
      this.hGen[s] = this.adj.gen[b.adj[i]];
      this.hNext[s] = -1;
      if (this.tail[nb] >= 0) this.hNext[this.tail[nb]] = s;
      else this.head[nb] = s;
      this.tail[nb] = s;
      this.held[nb]++;
      this.count(R_HELD);
      if (b.trace !== null) b.note(i, this.name, `held for ${formatIp4(this.nbr.ip[nb])}`);
      if (!this.pending.has(nb)) {
        this.pending.add(nb);
        this.nGen[nb] = this.nbr.gen[nb];
        this.tries[nb] = 0;
        this.request(b, i, nb);
      }
    }
  }

  private request(b: Batch, from: number, nb: number): void {
    const j = b.alloc(from);
    if (j < 0) {
      this.count(R_NO_SLOT);
      return;
    }
    b.len[j] = emitArpRequest(b.u8, b.off[j], this.mac, this.srcIp, this.nbr.ip[nb]);
    b.txPort[j] = PORT_UPLINK;
    b.flags[j] = PKT_LOCAL;
    this.tries[nb]++;
    this.lastReq[nb] = this.now;
    this.count(R_REQUEST);
    if (b.trace !== null) b.note(j, this.name, `arp who-has ${formatIp4(this.nbr.ip[nb])}`);
    this.next[N_OUTPUT].enter(b, j);
  }

  override poll(b: Batch): void {
    if (this.pending.size === 0) return;
    for (const nb of this.pending) {
      if (this.nbr.gen[nb] !== this.nGen[nb]) this.discard(nb, R_STALE);
      else if (this.nbr.resolved(nb)) this.release(b, nb, -1);
    }
  }

  override tick(b: Batch, now: number): void {
    this.now = now;
    if (this.pending.size === 0) return;
    for (const nb of this.pending) {
      if (this.nbr.gen[nb] !== this.nGen[nb]) {
        this.discard(nb, R_STALE);
        continue;
      }
      if (this.nbr.resolved(nb)) {
        this.release(b, nb, -1);
        continue;
      }
      if (now - this.lastReq[nb] < this.p.arpInterval) continue;
      if (this.tries[nb] >= this.p.arpRetries) this.discard(nb, R_TIMEOUT);
      else this.request(b, -1, nb);
    }
  }

  /** Sends everything held for neighbour nb back to ip4-rewrite (its MAC is known now). */
  private release(b: Batch, nb: number, cause: number): void {
    if (!this.pending.has(nb)) return;
    for (let s = this.head[nb]; s >= 0;) {
      const next = this.hNext[s];
      const j = this.adj.gen[this.hAdj[s]] !== this.hGen[s] ? -2 : b.alloc(cause);
      if (j === -2) this.count(R_STALE);
      else if (j < 0) this.count(R_NO_SLOT);
      else {
        b.u8.set(this.pool.subarray(s * SLOT_DATA, s * SLOT_DATA + this.hLen[s]), b.off[j]);
        b.len[j] = this.hLen[s];
        b.adj[j] = this.hAdj[s];
        b.rxPort[j] = this.hRx[s];
        b.flags[j] = this.hFlags[s];
        this.count(R_RELEASED);
        if (b.trace !== null) b.note(j, this.name, `released to ${formatIp4(this.nbr.ip[nb])}`);
        this.next[N_REWRITE].enter(b, j);
      }
      this.freeSlot(s);
      s = next;
    }
    this.forget(nb);
  }

  private discard(nb: number, reason: number): void {
    for (let s = this.head[nb]; s >= 0;) {
      const next = this.hNext[s];
      this.count(reason);
      this.freeSlot(s);
      s = next;
    }
    this.forget(nb);
  }

  private freeSlot(s: number): void {
    this.hNext[s] = this.freeHead;
    this.freeHead = s;
  }

  /** Neighbour nb holds nothing and is no longer being resolved. */
  private forget(nb: number): void {
    this.head[nb] = this.tail[nb] = -1;
    this.held[nb] = 0;
    this.pending.delete(nb);
  }

  override finish(): void {
    for (const nb of [...this.pending]) this.discard(nb, R_AT_EXIT);
  }
}
