// pcapng (draft-ietf-opsawg-pcapng) reader: sections, interfaces with their timestamp resolution and
// offset, Enhanced/Simple/obsolete Packet Blocks; every other block skipped. See reader.ts for the
// buffering and error conventions. Runs on whichever thread replays; no allocation per frame.
import { CaptureError } from '../../../common/errors.js';
import { BaseReader, MAX_BLOCK_LEN, MAX_FRAME_LEN, type Source } from './source.js';

export const PCAPNG_SHB = 0x0a0d0d0a;
const PCAPNG_BOM = 0x1a2b3c4d;
const PCAPNG_BOM_SWAPPED = 0x4d3c2b1a;
const PCAPNG_IDB = 0x00000001;
const PCAPNG_PB = 0x00000002;
const PCAPNG_SPB = 0x00000003;
const PCAPNG_EPB = 0x00000006;
const OPT_ENDOFOPT = 0;
const OPT_IF_TSRESOL = 9;
const OPT_IF_TSOFFSET = 14;
const TWO32 = 4294967296;

// Timestamp unit kinds per pcapng interface (if_tsresol, sec. 4.2).
const TS_DEC = 0; // 10^-exp, exp <= 11: exact double arithmetic
const TS_BIN = 1; // 2^-exp, exp <= 32: exact double arithmetic
const TS_BIG = 2; // anything finer: BigInt (allocates; only for exotic resolutions)

/** pcapng: a sequence of sections, each an SHB followed by IDBs, packet blocks and other blocks. */
export class PcapNgReader extends BaseReader {
  readonly format = 'pcapng';
  private le = true;
  // interfaces of the current section, by interface id
  private ifCount = 0;
  private readonly ifLinkType: number[] = [];
  private readonly ifSnapLen: number[] = [];
  private readonly ifKind: number[] = [];
  private readonly ifNsMul: number[] = []; // nanoseconds = floor(remainder * mul / div), exact
  private readonly ifNsDiv: number[] = [];
  private readonly ifDiv: number[] = []; // timestamp units per second
  private readonly ifOffset: number[] = []; // if_tsoffset seconds

  constructor(src: Source, strictTail: boolean) {
    super(src, strictTail);
    // fail at open, not at the first next(), when the first section header is unusable
    if (!src.ensure(16)) {
      throw new CaptureError(
        `${this.path}: truncated pcapng section header (${src.end - src.pos} of 28 bytes)`,
      );
    }
    const bom = src.dv.getUint32(8, true);
    if (bom !== PCAPNG_BOM && bom !== PCAPNG_BOM_SWAPPED) {
      throw new CaptureError(
        `${this.path}: section header at byte 0: bad byte-order magic 0x${bom.toString(16)}`,
      );
    }
    const le = bom === PCAPNG_BOM;
    const major = src.dv.getUint16(12, le);
    if (major !== 1) {
      throw new CaptureError(
        `${this.path}: section header at byte 0: unsupported pcapng version ${major}.${src.dv.getUint16(14, le)}`,
      );
    }
  }

  next(): boolean {
    if (this.done) return false;
    const src = this.src;
    while (true) {
      let p = src.pos;
      if (src.end - p < 12) {
        if (!src.ensure(12)) return this.finish(12, `frame ${this.index + 1} block header`);
        p = src.pos;
      }
      let dv = src.dv;
      const type = dv.getUint32(p, this.le);
      if (type === PCAPNG_SHB) {
        // byte order comes from this section's byte-order magic (sec. 4.1)
        const bom = dv.getUint32(p + 8, true);
        if (bom === PCAPNG_BOM) this.le = true;
        else if (bom === PCAPNG_BOM_SWAPPED) this.le = false;
        else throw this.fail('section header', src.base + p, `bad byte-order magic 0x${bom.toString(16)}`);
      }
      const len = dv.getUint32(p + 4, this.le);
      const off = src.base + p;
      if (len < 12 || (len & 3) !== 0) {
        throw this.fail(`frame ${this.index + 1} block`, off, `bad block total length ${len}`);
      }
      const isPacket = type === PCAPNG_EPB || type === PCAPNG_SPB || type === PCAPNG_PB;
      if (!isPacket && type !== PCAPNG_SHB && type !== PCAPNG_IDB && len > MAX_BLOCK_LEN) {
        // a large block we do not read (e.g. custom or decryption secrets): stream past it
        if (!src.skip(len)) return this.finish(len, `frame ${this.index + 1} block`);
        continue;
      }
      if (len > MAX_BLOCK_LEN) {
        throw this.fail(
          `frame ${this.index + 1} block`,
          off,
          `block total length ${len} exceeds ${MAX_BLOCK_LEN}`,
        );
      }
      if (src.end - p < len) {
        if (!src.ensure(len)) return this.finish(len, `frame ${this.index + 1} block`);
        p = src.pos;
        dv = src.dv;
      }
      if (dv.getUint32(p + len - 4, this.le) !== len) {
        throw this.fail(
          `frame ${this.index + 1} block`,
          off,
          `trailing block length ${dv.getUint32(p + len - 4, this.le)} differs from leading ${len}`,
        );
      }
      src.pos = p + len;
      if (type === PCAPNG_EPB || type === PCAPNG_PB) {
        if (len < 32)
          throw this.fail(`frame ${this.index + 1} block`, off, `packet block too short (${len})`);
        const ifc = type === PCAPNG_EPB ? dv.getUint32(p + 8, this.le) : dv.getUint16(p + 8, this.le);
        if (ifc >= this.ifCount) {
          throw this.fail(`frame ${this.index + 1} block`, off, `unknown interface ${ifc}`);
        }
        const capLen = dv.getUint32(p + 20, this.le);
        if (capLen > MAX_FRAME_LEN) {
          throw this.fail(
            `frame ${this.index + 1} block`,
            off,
            `captured length ${capLen} exceeds ${MAX_FRAME_LEN}`,
          );
        }
        if (28 + capLen + 4 > len) {
          throw this.fail(
            `frame ${this.index + 1} block`,
            off,
            `captured length ${capLen} exceeds block length ${len}`,
          );
        }
        this.setTime(ifc, dv.getUint32(p + 12, this.le), dv.getUint32(p + 16, this.le));
        this.capLen = capLen;
        this.origLen = dv.getUint32(p + 24, this.le);
        this.dataOffset = p + 28;
        this.linkType = this.ifLinkType[ifc];
      } else if (type === PCAPNG_SPB) {
        // sec. 4.4: interface 0, no timestamp (we keep the previous frame's, so replay order is stable),
        // captured length = min(original length, snaplen, what the block holds)
        if (this.ifCount === 0) {
          throw this.fail(`frame ${this.index + 1} block`, off, 'simple packet block before any interface');
        }
        if (len < 16) throw this.fail(`frame ${this.index + 1} block`, off, `simple packet block too short`);
        const origLen = dv.getUint32(p + 8, this.le);
        const snap = this.ifSnapLen[0];
        let capLen = len - 16;
        if (origLen < capLen) capLen = origLen;
        if (snap !== 0 && snap < capLen) capLen = snap;
        if (capLen > MAX_FRAME_LEN) {
          throw this.fail(
            `frame ${this.index + 1} block`,
            off,
            `captured length ${capLen} exceeds ${MAX_FRAME_LEN}`,
          );
        }
        this.capLen = capLen;
        this.origLen = origLen;
        this.dataOffset = p + 12;
        this.linkType = this.ifLinkType[0];
      } else {
        if (type === PCAPNG_SHB) this.section(p, len, off);
        else if (type === PCAPNG_IDB) this.interface(p, len, off);
        // every other block type: skipped
        continue;
      }
      this.buf = src.buf;
      this.recordOffset = off;
      this.index++;
      return true;
    }
  }

  private section(p: number, len: number, off: number): void {
    if (len < 28) throw this.fail('section header', off, `block too short (${len})`);
    const major = this.src.dv.getUint16(p + 12, this.le);
    const minor = this.src.dv.getUint16(p + 14, this.le);
    if (major !== 1) throw this.fail('section header', off, `unsupported pcapng version ${major}.${minor}`);
    this.ifCount = 0;
  }

  private interface(p: number, len: number, off: number): void {
    const dv = this.src.dv;
    const le = this.le;
    const where = `interface ${this.ifCount} description`;
    if (len < 20) throw this.fail(where, off, `block too short (${len})`);
    let kind = TS_DEC;
    let exp = 6;
    let tsOffset = 0;
    // options (sec. 3.5): code, length, value padded to 32 bits; until opt_endofopt or the block's end
    let o = p + 16;
    const oend = p + len - 4;
    while (o + 4 <= oend) {
      const code = dv.getUint16(o, le);
      const olen = dv.getUint16(o + 2, le);
      if (code === OPT_ENDOFOPT) break;
      if (o + 4 + olen > oend) throw this.fail(where, off, `option ${code} overruns the block`);
      if (code === OPT_IF_TSRESOL) {
        if (olen !== 1) throw this.fail(where, off, `if_tsresol length ${olen}`);
        const v = this.src.buf[o + 4];
        exp = v & 0x7f;
        kind = v & 0x80 ? TS_BIN : TS_DEC;
        if ((kind === TS_DEC && exp > 19) || (kind === TS_BIN && exp > 63)) {
          throw this.fail(where, off, `unsupported if_tsresol 0x${v.toString(16)}`);
        }
      } else if (code === OPT_IF_TSOFFSET) {
        if (olen !== 8) throw this.fail(where, off, `if_tsoffset length ${olen}`);
        const lo = dv.getUint32(o + 4 + (le ? 0 : 4), le);
        const hi = dv.getInt32(o + 4 + (le ? 4 : 0), le);
        tsOffset = hi * TWO32 + lo;
      }
      o += 4 + ((olen + 3) & ~3);
    }
    const i = this.ifCount++;
    this.ifLinkType[i] = dv.getUint16(p + 8, le);
    this.ifSnapLen[i] = dv.getUint32(p + 12, le);
    this.ifOffset[i] = tsOffset;
    if (kind === TS_DEC && exp <= 11) {
      // r < 10^exp: r * 10^(9-exp) < 1e9 is exact; for exp 10..11 floor(r / 10^(exp-9)) cannot round up
      this.ifKind[i] = TS_DEC;
      this.ifDiv[i] = 10 ** exp;
      this.ifNsMul[i] = exp <= 9 ? 10 ** (9 - exp) : 1;
      this.ifNsDiv[i] = exp <= 9 ? 1 : 10 ** (exp - 9);
    } else if (kind === TS_BIN && exp <= 32) {
      // r < 2^exp <= 2^32 and 1e9 = 2^9 * 1953125: r * 1953125 < 2^53 is exact, dividing by 2^k too
      this.ifKind[i] = TS_BIN;
      this.ifDiv[i] = 2 ** exp;
      this.ifNsMul[i] = exp < 9 ? 1e9 : 1953125;
      this.ifNsDiv[i] = exp < 9 ? 2 ** exp : 2 ** (exp - 9);
    } else {
      this.ifKind[i] = TS_BIG;
      this.ifDiv[i] = kind === TS_BIN ? -exp : exp; // sign carries the base for the BigInt path
    }
  }

  /** Splits a 64-bit timestamp (hi:lo, in interface units) into seconds and nanoseconds, exactly. */
  private setTime(ifc: number, hi: number, lo: number): void {
    const kind = this.ifKind[ifc];
    let sec: number;
    let nsec: number;
    if (kind === TS_BIG) {
      const e = this.ifDiv[ifc];
      const d = e < 0 ? 1n << BigInt(-e) : 10n ** BigInt(e);
      const t = (BigInt(hi) << 32n) | BigInt(lo);
      sec = Number(t / d);
      nsec = Number(((t % d) * 1000000000n) / d);
    } else {
      // long division of hi*2^32 + lo by d <= 10^11 in 16-bit steps keeps every value below 2^53
      const d = this.ifDiv[ifc];
      const q1 = Math.floor(hi / d);
      const r1 = hi - q1 * d;
      const x = r1 * 65536 + (lo >>> 16);
      const q2 = Math.floor(x / d);
      const r2 = x - q2 * d;
      const y = r2 * 65536 + (lo & 0xffff);
      const q3 = Math.floor(y / d);
      const r = y - q3 * d;
      sec = q1 * TWO32 + q2 * 65536 + q3;
      nsec = Math.floor((r * this.ifNsMul[ifc]) / this.ifNsDiv[ifc]);
    }
    this.tsSec = sec + this.ifOffset[ifc];
    this.tsNsec = nsec;
  }
}
