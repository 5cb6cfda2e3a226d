// Shared helpers for the capture I/O tests: fixtures, external tools, and pcap-parser (the independent
// classic-pcap parser we cross-check against; it has no type declarations, hence createRequire).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CaptureReader } from '../../src/dataplane/devices/pcap/reader.js';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
export const fixture = (name: string): string => join(FIXTURES, name);

/** One frame as the tests compare it. */
export interface Frame {
  hex: string;
  origLen: number;
  sec: number;
  nsec: number;
  linkType?: number;
}

/** Ground truth written by make-fixtures.py: the frames (nanosecond timestamps) in every fixture. */
export const FRAMES: Frame[] = JSON.parse(readFileSync(fixture('frames.json'), 'utf8'));
/** Ground truth for the hand-built multi-section pcapng. */
export const MULTI: (Frame & { spb?: boolean; tsharkSkip?: string })[] = JSON.parse(
  readFileSync(fixture('multi.json'), 'utf8'),
);
export const FRAMES_US: Frame[] = FRAMES.map((f) => ({ ...f, nsec: f.nsec - (f.nsec % 1000) }));

/** Reads every frame (copying the bytes) until next() returns false. */
export function readAll(r: CaptureReader, withLinkType = false): Frame[] {
  const out: Frame[] = [];
  while (r.next()) {
    const f: Frame = {
      hex: Buffer.from(r.buf.buffer, r.buf.byteOffset + r.dataOffset, r.capLen).toString('hex'),
      origLen: r.origLen,
      sec: r.tsSec,
      nsec: r.tsNsec,
    };
    if (withLinkType) f.linkType = r.linkType;
    out.push(f);
  }
  return out;
}

/** `sec.nnnnnnnnn`, as tshark prints frame.time_epoch. */
export const epoch = (sec: number, nsec: number): string => `${sec}.${String(nsec).padStart(9, '0')}`;

const toolCache = new Map<string, boolean>();
/** Whether an external tool runs here (tests that need one skip, saying so in their title). */
export function hasTool(cmd: string, args: string[] = ['--version']): boolean {
  let ok = toolCache.get(cmd);
  if (ok === undefined) {
    const r = spawnSync(cmd, args, { stdio: 'ignore', timeout: 20_000 });
    ok = r.error === undefined && r.status === 0;
    toolCache.set(cmd, ok);
  }
  return ok;
}
export const skipNote = (cmd: string): string => (hasTool(cmd) ? '' : ` [SKIPPED: ${cmd} not installed]`);

/** tshark's view of a capture: one line per record: time_epoch, cap_len, len, interface_id. */
export function tsharkFields(path: string): string[][] {
  const r = spawnSync(
    'tshark',
    [
      '-r',
      path,
      '-T',
      'fields',
      '-e',
      'frame.time_epoch',
      '-e',
      'frame.cap_len',
      '-e',
      'frame.len',
      '-e',
      'frame.interface_id',
    ],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  if (r.status !== 0) throw new Error(`tshark -r ${path} failed: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('\t'));
}

// ---- pcap-parser (nearinfinity/node-pcap-parser 0.2.1): event based, classic microsecond pcap only
interface PcapParserPacket {
  header: {
    timestampSeconds: number;
    timestampMicroseconds: number;
    capturedLength: number;
    originalLength: number;
  };
  data: Buffer;
}
interface PcapParserEmitter {
  on(ev: 'packet', cb: (p: PcapParserPacket) => void): PcapParserEmitter;
  on(
    ev: 'globalHeader',
    cb: (h: { linkLayerType: number; snapshotLength: number }) => void,
  ): PcapParserEmitter;
  on(ev: 'end', cb: () => void): PcapParserEmitter;
  on(ev: 'error', cb: (e: Error) => void): PcapParserEmitter;
}
export const pcapParser = createRequire(import.meta.url)('pcap-parser') as {
  parse(input: string | NodeJS.ReadableStream): PcapParserEmitter;
};

/** Frames of a classic microsecond pcap as pcap-parser reads them. */
export function pcapParserFrames(path: string): Promise<{ linkType: number; frames: Frame[] }> {
  return new Promise((resolve, reject) => {
    const frames: Frame[] = [];
    let linkType = -1;
    let failed = false;
    pcapParser
      .parse(path)
      .on('globalHeader', (h) => (linkType = h.linkLayerType))
      .on('packet', (p) =>
        frames.push({
          hex: p.data.toString('hex'),
          origLen: p.header.originalLength,
          sec: p.header.timestampSeconds,
          nsec: p.header.timestampMicroseconds * 1000,
        }),
      )
      .on('error', (e) => {
        failed = true;
        reject(e);
      })
      .on('end', () => {
        if (!failed) resolve({ linkType, frames });
      });
  });
}
