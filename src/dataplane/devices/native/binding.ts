// The raw calitap_io addon's shape: positional arguments exactly as native/*.c take them (no code).
// The wrapper modules beside this one are the API the rest of calitap uses.
//
// What flows through it: nothing at run time. Who owns the buffers: the caller of each function; the
// addon touches typed arrays only during a call. Which thread runs it: any (context-aware addon).
import type {
  IpipOuter,
  Mode,
  RawSocketOptions,
  SockAddr,
  TapFlags,
  TapHandle,
  UdpSocketOptions,
} from './types.js';

export interface NativeConstants {
  MODE_AUTO: 0;
  MODE_RW: 1;
  MODE_MMSG: 2;
  TUN_F_CSUM: number;
  TUN_F_TSO4: number;
  TUN_F_TSO6: number;
  TUN_F_TSO_ECN: number;
  TUN_F_UFO: number;
  PACKET_FANOUT_HASH: number;
  PACKET_FANOUT_LB: number;
  PACKET_FANOUT_CPU: number;
  POLLIN: number;
  POLLOUT: number;
  EPOLLIN: number;
  EPOLLOUT: number;
  MMSG_CHUNK: number;
  /** errnos writeBatch/writeBatchStatus count as one refused frame (the rest stop the batch) */
  TX_DROP_ERRNOS: number[];
  POLL_MAX: number;
  /** most frames readBatchUring/writeBatchUring move per io_uring_enter */
  URING_MAX: number;
}

export interface NativeBinding {
  unsupportedPlatform?: boolean;
  constants: NativeConstants;
  errnoName(errno: number): string;
  /** madvise(MADV_HUGEPAGE) over the 2 MiB-aligned part of the array's memory; bytes advised (0: none) */
  adviseHugePages?(u8: Uint8Array): number;
  tapOpen(name: string, flags?: TapFlags): TapHandle;
  tapSetPersist(fd: number, on: boolean): void;
  tapSetOffload(fd: number, flags: number): void;
  tapSetVnetHdrSize(fd: number, n: number): void;
  setTxQueueLen(ifname: string, n: number): void;
  ifIndex(name: string): number;
  ifMac(name: string): string;
  ifSetUp(name: string, up?: boolean): void;
  ifSetMtu(name: string, mtu: number): void;
  ifFeature(name: string, feature: number): boolean;
  ifAddrs4(): number[];
  arenaDontFork(arena: Uint8Array): number;
  ifSetFeature(name: string, feature: number, on: boolean): void;
  packetSocket(
    ifname: string,
    opts?: {
      fanoutGroup?: number;
      fanoutMode?: number;
      bpf?: Uint8Array;
      rcvbuf?: number;
      sndbuf?: number;
      ignoreOutgoing?: boolean;
      vnetHdr?: boolean;
    },
  ): number;
  udpSocket(bindAddr: string, port: number, opts?: UdpSocketOptions): number;
  rawSocket(proto: number, opts?: RawSocketOptions): number;
  sockName(fd: number): SockAddr;
  setBpf(fd: number, bpf: Uint8Array): void;
  close(fd: number): void;
  fdMode(fd: number): Mode;
  readBatch(
    fd: number,
    arena: Uint8Array,
    offsets: Uint32Array,
    lens: Uint32Array,
    count: number,
    slotCapacity: number,
    mode: Mode,
    srcAddrs?: Uint32Array,
    srcPorts?: Uint16Array,
    rxError?: Int32Array,
    groSizes?: Uint16Array,
  ): number;
  writeBatch(
    fd: number,
    arena: Uint8Array,
    offsets: Uint32Array,
    lens: Uint32Array,
    count: number,
    mode: Mode,
    status?: Int32Array,
    dstAddrs?: Uint32Array,
    dstPorts?: Uint16Array,
  ): number;
  writeBatchStatus(
    fd: number,
    arena: Uint8Array,
    offsets: Uint32Array,
    lens: Uint32Array,
    count: number,
    mode: Mode,
    status: Int32Array,
    dstAddrs?: Uint32Array,
    dstPorts?: Uint16Array,
    gsoSizes?: Uint16Array,
  ): number;
  uringCreate(entries?: number): object;
  uringClose(ring: object): void;
  readBatchUring(
    ring: object,
    fd: number,
    arena: Uint8Array,
    offsets: Uint32Array,
    lens: Uint32Array,
    count: number,
    slotCapacity: number,
    rxError?: Int32Array,
    first?: number,
  ): number;
  writeBatchUring(
    ring: object,
    fd: number,
    arena: Uint8Array,
    offsets: Uint32Array,
    lens: Uint32Array,
    count: number,
    status: Int32Array,
  ): number;
  segmentTcp4(
    arena: Uint8Array,
    srcOff: number,
    srcLen: number,
    mss: number,
    outOffs: Uint32Array,
    outLens: Uint32Array,
    maxOut: number,
    outerLen: number,
    outer?: IpipOuter,
  ): number;
  csumPartial(arena: Uint8Array, off: number, len: number, seed?: number): number;
  l4Csum4(
    arena: Uint8Array,
    ipOffs: Uint32Array,
    lens: Uint32Array,
    count: number,
    results: Uint8Array,
    write?: boolean,
  ): number;
  moveRanges(arena: Uint8Array, dsts: Uint32Array, srcs: Uint32Array, lens: Uint32Array, count: number): void;
  poll(fds: Int32Array, timeoutMs: number, events?: number): number;
  epollCreate(): number;
  epollAdd(epfd: number, fd: number, events?: number): void;
  epollMod(epfd: number, fd: number, events?: number): void;
  epollDel(epfd: number, fd: number): void;
  epollWait(epfd: number, readyFds: Int32Array, timeoutMs: number, yieldFirst?: boolean): number;
  eventfdCreate(initval?: number, semaphore?: boolean): number;
  eventfdWrite(fd: number, value?: number): void;
  eventfdRead(fd: number): number;
}
