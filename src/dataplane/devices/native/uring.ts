// Batched TAP I/O over io_uring (native/uring.c): readBatchUring / writeBatchUring do what readBatch /
// writeBatchStatus do for a TAP queue, with ONE io_uring_enter() per batch (up to 256 frames) instead
// of one read()/write() system call per frame. One per worker, on by default (CALITAP_URING=0: off; live/worker.ts).
//
// What flows through it: Ethernet frames (behind their virtio_net_hdr when the TAP has one; the
// offsets say where, as for readBatch) copied by the kernel between the fd and the caller's arena.
// Who owns the buffers: the calling thread owns the arena and the arrays; the kernel touches them
// only during the call. The ring belongs to the thread that created it (one per worker; never share
// it: the kernel accepts submissions only from its creator). Which thread runs it: that thread;
// never blocks (non-blocking fds: a read with nothing pending completes at once with EAGAIN).
import { nb } from './load.js';
import { arenaView } from './batch.js';
import type { Arena } from './types.js';

/** An io_uring owned by one thread (uringCreate); opaque. */
export type Ring = object & { readonly __ring: unique symbol };

/** Creates an io_uring of `entries` submission slots (default and most: 256). Once per worker. */
export function uringCreate(entries?: number): Ring {
  return nb().uringCreate(entries) as Ring;
}

/** Frees the ring now (later calls with it throw EBADF); the GC frees a forgotten one. Idempotent. */
export function uringClose(ring: Ring): void {
  nb().uringClose(ring);
}

/**
 * readBatch for a TAP queue through `ring`: frame i goes to `arena[offsets[i] ..
 * offsets[i] + slotCapacity)`, its length to `lens[i]`; returns how many were read, in arrival order
 * (0 when nothing is pending). Truncation (`lens[i] > slotCapacity`), errors and `rxError` as
 * readBatch (a hard error is thrown only when no frame was read).
 * `first` (default: count): reads in the first io_uring_enter; while every read of a wave gets a
 * frame, the next wave tries twice as many. Each read that finds nothing costs the kernel a little
 * (far less than a system call): pass a guess of what is pending (e.g. twice the last batch).
 */
export function readBatchUring(
  ring: Ring,
  fd: number,
  arena: Arena,
  offsets: Uint32Array,
  lens: Uint32Array,
  count: number,
  slotCapacity: number,
  rxError?: Int32Array,
  first?: number,
): number {
  return nb().readBatchUring(ring, fd, arenaView(arena), offsets, lens, count, slotCapacity, rxError, first);
}

/**
 * writeBatchStatus for a TAP queue through `ring`: returns the frames the kernel accepted and sets
 * `status[i]` for every i < count exactly as writeBatchStatus (0, -errno refused, -EAGAIN full, other
 * -errno: the fd is broken, from the failing frame on). Never throws for the fd's errors.
 */
export function writeBatchUring(
  ring: Ring,
  fd: number,
  arena: Arena,
  offsets: Uint32Array,
  lens: Uint32Array,
  count: number,
  status: Int32Array,
): number {
  return nb().writeBatchUring(ring, fd, arenaView(arena), offsets, lens, count, status);
}
