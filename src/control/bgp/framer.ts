// Stream framer: turns TCP chunks (split anywhere) into whole BGP messages. Validates the marker
// and length as soon as the 19-octet header is complete (RFC 4271 §6.1: bad marker → 1/1, bad
// length → 1/2, bad type → 1/3) and then refuses further input. Holds at most one partial message
// (≤ 4096 octets) plus the unconsumed tail of the current chunk. Control thread only.
import { checkHeader } from './codec.js';
import { BGP_HEADER_LEN, type BgpError, bgpError, Err, HeaderSub } from './types.js';

export class BgpFramer {
  private pending: Uint8Array = new Uint8Array(0);
  private failed: BgpError | null = null;

  /** The header error that stopped the framer, if any. */
  get error(): BgpError | null {
    return this.failed;
  }

  /** Octets buffered while waiting for the rest of a message. */
  get buffered(): number {
    return this.pending.length;
  }

  /**
   * Feeds a chunk and returns the complete messages it finished (each a fresh copy the caller
   * owns), or stops at the first bad header: then `error` is set and the rest is ignored.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.failed) return [];
    let buf: Uint8Array;
    if (this.pending.length) {
      buf = new Uint8Array(this.pending.length + chunk.length);
      buf.set(this.pending);
      buf.set(chunk, this.pending.length);
    } else {
      buf = chunk;
    }
    const out: Uint8Array[] = [];
    let o = 0;
    while (buf.length - o >= BGP_HEADER_LEN) {
      const len = checkHeader(buf, o);
      if (typeof len !== 'number') {
        this.failed = len;
        this.pending = new Uint8Array(0);
        return out;
      }
      if (buf.length - o < len) break;
      out.push(buf.slice(o, o + len));
      o += len;
    }
    // Check the marker of a partial header early, so garbage is refused without waiting for 19 octets.
    for (let i = o; i < buf.length && i < o + 16; i++) {
      if (buf[i] !== 0xff) {
        this.failed = bgpError(Err.HEADER, HeaderSub.NOT_SYNC, 'marker is not all ones');
        this.pending = new Uint8Array(0);
        return out;
      }
    }
    this.pending = o === buf.length ? new Uint8Array(0) : buf.slice(o);
    return out;
  }
}
