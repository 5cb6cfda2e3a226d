// Typed wrapper over calitap_io, our one native addon (native/*.c): TAP queues, AF_PACKET / UDP / raw
// sockets, eventfd, poll/epoll and batched frame I/O between an fd and a packet arena. This module
// only re-exports; each concern lives in devices/native/: load.ts (loading, per-fd I/O mode, errno
// helpers), tap.ts (TAP and interface ioctls), sockets.ts, batch.ts (readBatch / writeBatch /
// writeBatchStatus, the hot path), uring.ts (the same for TAP queues over io_uring), poll.ts (poll, epoll, eventfd), offload.ts (segmentation and
// checksums), bpf.ts, types.ts, binding.ts.
//
// What flows through it: Ethernet frames (TAP, AF_PACKET) and datagrams (UDP, raw IPv4) copied by the
// kernel straight into / out of the caller's arena (a SharedArrayBuffer, or a Uint8Array over one).
// Who owns the buffers: the calling thread owns the arena and the offsets/lens arrays; the addon only
// touches them during the call. Which thread runs it: any. The addon is context-aware N-API with no
// global state, so it loads in the main thread and in every worker_thread; each thread loads its own
// instance on first use.
//
// Errors: a failing syscall throws an Error (see IoSysError) whose message names the call, the
// interface or fd and strerror(errno), e.g.
//   packetSocket("eth9"): if_nametoindex: No such device (ENODEV)
// with `code` = errno name, `errno`, `syscall`. Wrong argument types throw TypeError, out-of-range values
// RangeError. The addon not being built throws CalitapError code `io-native-missing`. On transmit,
// writeBatchStatus reports every frame (0 or -errno) instead of throwing.
export type { NativeBinding, NativeConstants } from './native/binding.js';
export type {
  Arena,
  FanoutMode,
  IoSysError,
  IpipOuter,
  OffloadFlags,
  PacketSocketOptions,
  RawSocketOptions,
  SockAddr,
  TapFlags,
  TapHandle,
  UdpSocketOptions,
} from './native/types.js';
export {
  adoptFd,
  adviseHugePages,
  errnoName,
  ioErrorLine,
  isIoSysError,
  loadNative,
  nativeAddonPath,
  nativeAvailable,
} from './native/load.js';
export {
  TUN_F,
  ifAddrs4,
  ifFeature,
  ifIndex,
  ifMac,
  ifSetFeature,
  ifSetMtu,
  ifSetUp,
  setTxQueueLen,
  tapOpen,
  tapSetOffload,
  tapSetPersist,
  tapSetTunnelGso,
  tapSetVnetHdrSize,
} from './native/tap.js';
export { close, packetSocket, rawSocket, setBpf, sockName, udpSocket } from './native/sockets.js';
export {
  ERRNO,
  UDP_MAX_PAYLOAD,
  UDP_MAX_SEGMENTS,
  arenaDontFork,
  readBatch,
  readBatchUdpGro,
  txErrorKind,
  writeBatch,
  writeBatchStatus,
  writeBatchUdpGso,
  type TxErrorKind,
} from './native/batch.js';
export { readBatchUring, uringClose, uringCreate, writeBatchUring, type Ring } from './native/uring.js';
export {
  EPOLLIN,
  EPOLLOUT,
  POLLIN,
  POLLOUT,
  POLL_MAX,
  epollAdd,
  epollCreate,
  epollDel,
  epollMod,
  epollWait,
  eventfdCreate,
  eventfdRead,
  eventfdWrite,
  poll,
} from './native/poll.js';
export { bpfFromTcpdump, parseTcpdumpDd } from './native/bpf.js';
export {
  CSUM_BAD,
  CSUM_MALFORMED,
  CSUM_NONE,
  CSUM_OK,
  SEG_ERR_HEADERS,
  SEG_ERR_ROOM,
  csumPartial,
  l4Csum4,
  moveRanges,
  segmentTcp4,
} from './native/offload.js';
