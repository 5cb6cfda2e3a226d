// Loads calitap_io (native/*.c built by node-gyp into build/Release/calitap_io.node) once per thread,
// and keeps the per-thread state the wrappers share: how readBatch/writeBatch drive each fd.
//
// What flows through it: no packets; the binding object and a map fd → I/O mode. Who owns the
// buffers: nothing here holds packet memory. Which thread runs it: any; every thread (main, each
// worker_thread) loads its own instance of the context-aware addon on first use.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CalitapError } from '../../../common/errors.js';
import type { NativeBinding } from './binding.js';
import type { IoSysError, Mode } from './types.js';

const ADDON = join('build', 'Release', 'calitap_io.node');

/**
 * Where the built addon is: $CALITAP_IO_ADDON, else `build/Release/calitap_io.node` in the nearest
 * ancestor of this module (works from src/ under vitest and from dist/ after `npm run build`).
 */
export function nativeAddonPath(): string | undefined {
  const env = process.env.CALITAP_IO_ADDON;
  if (env) return env;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 9; i++) {
    const p = join(dir, ADDON);
    if (existsSync(p)) return p;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

let binding: NativeBinding | undefined;

/** Loads the addon for this thread (once); throws CalitapError `io-native-missing` when not built. */
export function loadNative(): NativeBinding {
  if (binding) return binding;
  const path = nativeAddonPath();
  if (!path || !existsSync(path)) {
    const where = path ?? `${ADDON} above ${dirname(fileURLToPath(import.meta.url))}`;
    throw new CalitapError(
      'io-native-missing',
      `calitap_io native addon not built: ${where} not found; ` +
        'run `npm install` (it runs `node-gyp rebuild`) or `npx node-gyp rebuild` in the package root',
    );
  }
  let b: NativeBinding;
  try {
    b = createRequire(import.meta.url)(path) as NativeBinding;
  } catch (e) {
    throw new CalitapError(
      'io-native-missing',
      `calitap_io native addon at ${path} failed to load (${(e as Error).message.split('\n')[0]}); ` +
        'rebuild it with `npx node-gyp rebuild`',
    );
  }
  if (b.unsupportedPlatform) {
    throw new CalitapError(
      'io-native-missing',
      `calitap_io: live ports need Linux (this is ${process.platform})`,
    );
  }
  binding = b;
  return b;
}

/** True when the addon is built and loads on this platform. */
export function nativeAvailable(): boolean {
  try {
    loadNative();
    return true;
  } catch {
    return false;
  }
}

/**
 * Asks the kernel to back a big shared table with transparent huge pages (THP mode "madvise"; the
 * pages written from now on). A hint only: returns the bytes advised, 0 when the addon is missing,
 * predates this call or the kernel refused. Never throws.
 */
export function adviseHugePages(sab: SharedArrayBuffer): number {
  try {
    const b = binding ?? loadNative();
    return b.adviseHugePages?.(new Uint8Array(sab)) ?? 0;
  } catch {
    return 0;
  }
}

/** The loaded binding (loads it on first use). */
export const nb = (): NativeBinding => binding ?? loadNative();

// How readBatch/writeBatch drive each fd this thread created: 1 = read()/write() per frame (TAP,
// eventfd), 2 = recvmmsg/sendmmsg (sockets). Unknown fds (e.g. received from another thread) cost one
// fstat() per call until adoptFd() is called for them.
export const modes = new Map<number, Mode>();

/** Remember how to drive an fd this thread did not open itself (one fstat()). */
export function adoptFd(fd: number): void {
  modes.set(fd, nb().fdMode(fd));
}

export function isIoSysError(e: unknown): e is IoSysError {
  return e instanceof Error && typeof (e as Partial<IoSysError>).errno === 'number';
}

/** 'ENODEV' for 19 or -19 (a writeBatchStatus status or a readBatch rxError); 'EUNKNOWN' otherwise. */
export function errnoName(errno: number): string {
  return nb().errnoName(errno);
}

/**
 * One log line for a device error: `port eth1: read failed: ENODEV (readBatch(fd 7): read: No such
 * device (ENODEV))`. `e` is what readBatch/writeBatch threw or a negative status / errno number.
 */
export function ioErrorLine(port: string, op: 'read' | 'write', e: unknown): string {
  if (typeof e === 'number') return `port ${port}: ${op} failed: ${errnoName(e)}`;
  if (isIoSysError(e)) return `port ${port}: ${op} failed: ${e.code} (${e.message})`;
  return `port ${port}: ${op} failed: ${e instanceof Error ? e.message : String(e)}`;
}
