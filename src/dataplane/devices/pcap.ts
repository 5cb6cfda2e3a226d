// Capture files as devices (replay): a PcapDevice reads frames from one capture file (pcap or
// pcapng) and/or writes what its port transmits to one classic pcap.
//
// What flows through it: receiving, the frames under the reader's cursor are copied into the next
// slots with their capture timestamps, as long as they come before the device's limit (`limit()`:
// replay sets it to the end of the round and the next frame of the other inputs, so all inputs are
// merged in timestamp order while a run of frames from one input is read in one call); frames larger than a
// slot are counted as `replay: frame-too-big`. Transmitting, a round's packets are queued and written
// at flush in (timestamp, cause) order, each with the timestamp of the frame that caused it; a file
// accepts every frame, so every frame counts as sent. Who owns the buffers: the replay loop owns the
// batch; the reader's buffer is valid until its next advance. Which thread runs it: the replay
// loop's (the caller's). No allocation per packet.
import { GraphNode, drop, type NodeDecl } from '../graph/graph.js';
import { SLOT_DATA, piecesPerFrame, type Batch } from '../graph/packet.js';
import { CaptureError } from '../../common/errors.js';
import { LINKTYPE_ETHERNET, type CaptureReader } from './pcap/reader.js';
import type { PcapWriter } from './pcap/writer.js';
import { L2_PLAIN, type Device, type DeviceContext } from './device.js';

/** Replay's own counters (no packets flow through it). */
export class ReplayCounters extends GraphNode {
  readonly decl: NodeDecl = { name: 'replay', reasons: [drop('frame-too-big')] };
}

export class PcapDevice implements Device {
  readonly caps = L2_PLAIN;
  readonly fd = -1;
  port = -1;
  failed = false;
  /** the reader has a frame under its cursor (the next to read) */
  pending = false;
  /** called for each frame too big for a slot, before the next is read (replay's trace) */
  onTooBig: ((len: number) => void) | null = null;
  private readonly idx: Uint16Array;
  private n = 0;
  private batch: Batch | null = null;
  /** read() takes frames before (sec, nsec), or at it too when `limitIncl` (see limit()) */
  private limitSec = Infinity;
  private limitNsec = 0;
  private limitIncl = false;

  constructor(
    readonly name: string,
    private readonly ctx: DeviceContext,
    capacity: number,
    /** where transmitted frames go (null: a receive-only device) */
    readonly writer: PcapWriter | null,
    /** where received frames come from (null: a transmit-only device) */
    readonly reader: CaptureReader | null,
    private readonly counters: ReplayCounters,
  ) {
    this.idx = new Uint16Array(capacity);
  }

  /** Moves the reader to its first frame (throws CaptureError on a corrupt or non-Ethernet file). */
  start(): void {
    if (this.reader !== null) this.pending = this.advance();
  }

  /** Timestamp of the pending frame. */
  get tsSec(): number {
    return this.reader!.tsSec;
  }
  get tsNsec(): number {
    return this.reader!.tsNsec;
  }

  /** Does this device's pending frame come before other's? (Ties: the first opened wins.) */
  earlier(other: PcapDevice): boolean {
    const a = this.reader!;
    const b = other.reader!;
    return a.tsSec < b.tsSec || (a.tsSec === b.tsSec && a.tsNsec < b.tsNsec);
  }

  /**
   * read() takes only frames with a timestamp before (sec, nsec), or equal to it when `inclusive`;
   * `Infinity` seconds: no limit.
   */
  limit(sec: number, nsec: number, inclusive: boolean): void {
    this.limitSec = sec;
    this.limitNsec = nsec;
    this.limitIncl = inclusive;
  }

  slotsPerFrame(minMtu: number): number {
    return piecesPerFrame(minMtu, SLOT_DATA) + 1;
  }

  read(b: Batch, max: number): number {
    const r = this.reader;
    if (r === null) return 0;
    let got = 0;
    const ls = this.limitSec;
    const ln = this.limitNsec;
    const incl = this.limitIncl;
    while (got < max && this.pending) {
      const sec = r.tsSec;
      if (sec > ls || (sec === ls && (r.tsNsec > ln || (r.tsNsec === ln && !incl)))) break;
      if (b.push(r.buf, r.dataOffset, r.capLen, this.port, r.tsSec, r.tsNsec) < 0) {
        // larger than a packet slot: cannot be carried (counted like any other drop)
        this.counters.count(0);
        this.onTooBig?.(r.capLen);
      }
      got++;
      this.pending = this.advance();
    }
    return got;
  }

  private advance(): boolean {
    const r = this.reader!;
    if (!r.next()) return false;
    if (r.linkType !== LINKTYPE_ETHERNET) {
      throw new CaptureError(`${r.path}: frame ${r.index + 1}: link type ${r.linkType} is not Ethernet (1)`);
    }
    return true;
  }

  tx(b: Batch, i: number): void {
    this.batch = b;
    this.idx[this.n++] = i;
  }

  flush(): void {
    const b = this.batch;
    const n = this.n;
    if (b === null || n === 0) return;
    this.n = 0;
    const idx = this.idx;
    // insertion sort: the queue is nearly sorted already; order = when the causing frame was captured
    for (let k = 1; k < n; k++) {
      const v = idx[k];
      let j = k - 1;
      while (j >= 0 && later(b, idx[j], v)) {
        idx[j + 1] = idx[j];
        j--;
      }
      idx[j + 1] = v;
    }
    let bytes = 0;
    for (let k = 0; k < n; k++) {
      const i = idx[k];
      this.writer?.write(b.u8, b.off[i], b.len[i], b.tsSec[i], b.tsNsec[i]);
      bytes += b.len[i];
    }
    this.ctx.sent(this.port, n, bytes);
  }

  close(): void {
    this.reader?.close();
  }
}

function later(b: Batch, x: number, y: number): boolean {
  if (b.tsSec[x] !== b.tsSec[y]) return b.tsSec[x] > b.tsSec[y];
  if (b.tsNsec[x] !== b.tsNsec[y]) return b.tsNsec[x] > b.tsNsec[y];
  if (b.cause[x] !== b.cause[y]) return b.cause[x] > b.cause[y];
  return x > y;
}
