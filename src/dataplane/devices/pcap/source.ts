// The buffered byte source and the base every capture reader shares (see reader.ts for the formats,
// buffering and error conventions). Runs on whichever thread replays; not shared between threads.
import * as fs from 'node:fs';
import { CaptureError } from '../../../common/errors.js';

/** Largest captured length accepted for one frame (libpcap's and Wireshark's maximum snaplen). */
export const MAX_FRAME_LEN = 262144;
/** Largest pcapng block we parse in memory (SHB/IDB/packet blocks); larger ones are corruption. */
export const MAX_BLOCK_LEN = 16 << 20;
export const LINKTYPE_ETHERNET = 1;
export interface CaptureReader {
  readonly path: string;
  readonly format: 'pcap' | 'pcapng';
  /** Advances to the next frame; false at end of file. Throws CaptureError (one line: file, record/byte offset, why) on a corrupt record. */
  next(): boolean;
  // fields of the current frame, valid until the next call to next():
  /** the bytes; frame at [dataOffset, dataOffset + capLen). May be a different array after next(). */
  readonly buf: Uint8Array;
  readonly dataOffset: number;
  readonly capLen: number;
  readonly origLen: number;
  /** per frame (pcapng interfaces may differ); 1 = Ethernet */
  readonly linkType: number;
  /** integer seconds */
  readonly tsSec: number;
  /** integer nanoseconds 0..999999999 */
  readonly tsNsec: number;
  /** 0-based frame number in this file (-1 before the first next()) */
  readonly index: number;
  /** byte offset in the file of the current frame's record (pcap record header / pcapng block) */
  readonly recordOffset: number;
  /** true once next() has returned false because the file ended inside its last record */
  readonly truncatedTail: boolean;
  close(): void;
}

export interface CaptureReaderOptions {
  /** read chunk size in bytes (default 8 MiB); small values are for tests of records straddling chunks */
  chunkSize?: number;
  /** throw CaptureError on a truncated last record instead of stopping cleanly with `truncatedTail` */
  strictTail?: boolean;
}

export function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * The buffered byte source under both readers: `buf[pos, end)` holds file bytes starting at file
 * offset `base + pos`. fd < 0 means the whole input is already in `buf`.
 */
export class Source {
  dv: DataView;
  pos = 0;
  base = 0;
  eof: boolean;

  constructor(
    readonly path: string,
    public fd: number,
    public buf: Uint8Array,
    public end: number,
    /** total input size when known (regular file, memory), else Infinity (pipe) */
    readonly size: number,
  ) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.eof = fd < 0;
  }

  /** Makes at least n bytes available at `pos` (which may move); false if the input ends first. */
  ensure(n: number): boolean {
    if (this.end - this.pos >= n) return true;
    if (this.eof || this.base + this.pos + n > this.size) return false;
    const keep = this.end - this.pos;
    if (n > this.buf.length) {
      // a record larger than the chunk: grow once (rare: only for tiny test chunks or huge blocks)
      const bigger = new Uint8Array(Math.max(n, this.buf.length * 2));
      bigger.set(this.buf.subarray(this.pos, this.end), 0);
      this.buf = bigger;
      this.dv = new DataView(bigger.buffer, bigger.byteOffset, bigger.byteLength);
    } else if (keep > 0 && this.pos > 0) {
      this.buf.copyWithin(0, this.pos, this.end);
    }
    this.base += this.pos;
    this.pos = 0;
    this.end = keep;
    while (this.end < n) {
      let got: number;
      try {
        got = fs.readSync(this.fd, this.buf, this.end, this.buf.length - this.end, null);
      } catch (e) {
        throw new CaptureError(`${this.path}: read error at byte ${this.base + this.end}: ${errText(e)}`);
      }
      if (got === 0) {
        this.eof = true;
        return false;
      }
      this.end += got;
    }
    return true;
  }

  /** Skips n bytes without keeping them; false if the input ends first. */
  skip(n: number): boolean {
    while (true) {
      const avail = this.end - this.pos;
      if (avail >= n) {
        this.pos += n;
        return true;
      }
      n -= avail;
      this.pos = this.end;
      if (!this.ensure(Math.min(n, this.buf.length))) return false;
    }
  }

  close(): void {
    if (this.fd >= 0) {
      const fd = this.fd;
      this.fd = -1;
      this.eof = true;
      fs.closeSync(fd);
    }
  }
}

export abstract class BaseReader implements CaptureReader {
  abstract readonly format: 'pcap' | 'pcapng';
  readonly path: string;
  buf: Uint8Array;
  dataOffset = 0;
  capLen = 0;
  origLen = 0;
  linkType = 0;
  tsSec = 0;
  tsNsec = 0;
  index = -1;
  recordOffset = 0;
  truncatedTail = false;
  protected done = false;

  constructor(
    protected readonly src: Source,
    protected readonly strictTail: boolean,
  ) {
    this.path = src.path;
    this.buf = src.buf;
  }

  abstract next(): boolean;

  close(): void {
    this.done = true;
    this.src.close();
  }

  /** End of input while `need` bytes of a record were wanted: clean end, truncated tail or error. */
  protected finish(need: number, what: string): false {
    const src = this.src;
    const left = src.size !== Infinity ? src.size - src.base - src.pos : src.end - src.pos;
    this.done = true;
    this.src.close();
    if (left === 0) return false;
    if (this.strictTail) {
      throw new CaptureError(
        `${this.path}: ${what} at byte ${src.base + src.pos}: truncated: needs ${need} bytes, file has ${left} left`,
      );
    }
    this.truncatedTail = true;
    return false;
  }

  protected fail(where: string, offset: number, why: string): CaptureError {
    this.done = true;
    this.src.close();
    return new CaptureError(`${this.path}: ${where} at byte ${offset}: ${why}`);
  }
}
