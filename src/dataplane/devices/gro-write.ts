// The TAP side of receive-side coalescing: plans a round's queued frames (gro.ts), verifies the
// segments to merge with the native l4Csum4, and writes the output frames with the native gather
// write (one writev() per output frame, one call per round). TapDevice.send calls it when the TAP
// runs with offloads (IFF_VNET_HDR + TSO4: caps vnetHdr and gso 'tcp4'); without them nothing here
// runs.
//
// What flows through it: the frames one TAP queued in a round (offsets into the batch arena, each
// behind its virtio_net_hdr). Who owns the buffers: the thread that owns the batch; nothing is kept
// between rounds but the planner's index arrays. Which thread runs it: the batch owner (a worker).
// Status per input frame, as writeBatchStatus gives it: every frame of a super-frame gets the
// super-frame's status.
import type { Tcp4GroNode } from './gro-node.js';
import { Tcp4Gro } from './gro.js';
import * as io from './native.js';
import { writeGro } from './native/gro.js';

export class GroWriter {
  private readonly gro: Tcp4Gro;
  private readonly gstatus: Int32Array;

  constructor(
    capacity: number,
    node: Tcp4GroNode,
    /** the worker's io_uring: unmerged rounds are written with writeBatchUring */
    private readonly ring: io.Ring | null = null,
  ) {
    // checksums verified natively (see gro.ts on why nothing is trusted); CSUM_OK is 0 as CsumVerify wants
    this.gro = new Tcp4Gro(
      capacity,
      (u8, ipOffs, lens, count, results) => void io.l4Csum4(u8, ipOffs, lens, count, results),
      node,
    );
    this.gstatus = new Int32Array(capacity);
  }

  /** Writes the n frames queued at offs/lens (virtio header first) to fd; status[k] per frame. */
  send(
    fd: number,
    u8: Uint8Array,
    offs: Uint32Array,
    lens: Uint32Array,
    n: number,
    status: Int32Array,
  ): void {
    const gro = this.gro;
    if (n >= 2) gro.plan(u8, offs, lens, n);
    if (n < 2 || gro.merged === 0) {
      if (this.ring !== null) io.writeBatchUring(this.ring, fd, u8, offs, lens, n, status);
      else io.writeBatchStatus(fd, u8, offs, lens, n, status);
      return;
    }
    const g = gro.groups;
    const gs = this.gstatus;
    writeGro(fd, u8, gro.pieceOff, gro.pieceLen, gro.groupPieces, g, gs);
    let p = 0;
    for (let k = 0; k < g; k++) {
      const c = gro.groupPieces[k];
      const s = gs[k];
      for (let j = 0; j < c; j++) status[gro.members[p + j]] = s;
      p += c;
    }
  }
}
