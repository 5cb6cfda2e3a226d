// The control plane's one error family and its registry of stable codes. Every error a user can meet
// is a CalitapError whose `code` is one of ERROR_CODES (for tests, scripts and the control API's
// `error.code`) and whose message is one line naming the file, resource, field or value at fault and
// why. The CLI prints `calitap: <message>` and exits with the code's `exit` status; anything that is not
// a CalitapError is a bug and is reported as "internal error" with its stack (src/cli/main.ts).
// Plain data, no buffers, any thread. The dataplane never throws on packets: it counts and drops
// (src/dataplane/graph/counters.ts); it throws these only while being set up.
//
// Adding a code: add a row here (codes are never renamed or reused: scripts match on them), then
// throw it through the subclass of its family. test/common/errors.test.ts lists the registry.

/** Exit status of `calitap` for an error: 2 for what the user typed or wrote (usage, config), else 1. */
export type ExitStatus = 1 | 2;

interface CodeInfo {
  /** the subclass that throws it */
  readonly family: string;
  readonly exit: ExitStatus;
  /** one line: when it happens */
  readonly text: string;
}

function code<F extends string>(family: F, text: string, exit: ExitStatus = 1): CodeInfo & { family: F } {
  return { family, exit, text };
}

/** Every error code calitap uses, with the family that throws it and a one-line description. */
export const ERROR_CODES = {
  // what the user typed or wrote
  usage: code('UsageError', 'bad command-line usage: missing or malformed option, unknown port or name', 2),
  'config-invalid': code('ConfigError', 'the configuration (Calico v3 YAML) cannot be read or is invalid', 2),
  'capture-invalid': code('CaptureError', 'a capture file cannot be read or written, or is malformed'),
  // datastore (file or etcd v3)
  'datastore-unavailable': code('DatastoreError', 'the datastore cannot be reached or read'),
  'datastore-conflict': code('DatastoreError', 'a write lost a compare-and-swap (someone else changed it)'),
  'datastore-not-found': code('DatastoreError', 'the resource to change or delete does not exist'),
  'datastore-invalid': code('DatastoreError', 'the datastore holds or was given something it cannot store'),
  'datastore-exists': code('DatastoreError', 'the resource or key to create exists already'),
  'datastore-compacted': code('DatastoreError', 'a watch asked for a revision the datastore has compacted'),
  // IPAM
  'ipam-exhausted': code('IpamError', "no free address is left in the node's affine blocks (or the pools)"),
  'ip-in-use': code('IpamError', 'the requested address is already used by a workload'),
  'ip-outside-pools': code('IpamError', 'the requested address is outside every IP pool'),
  'ipam-conflict': code('IpamError', 'IPAM lost too many compare-and-swap races in a row and gave up'),
  // BGP speaker
  'bgp-invalid': code('BgpSpeakerError', 'a BGP speaker or peer option is invalid'),
  'bgp-listen': code('BgpSpeakerError', 'the BGP listener cannot bind its address and port'),
  'bgp-connect': code('BgpSpeakerError', 'an outgoing BGP connection failed or timed out'),
  'bgp-encode': code('BgpSpeakerError', 'a BGP message to send does not fit its encoding'),
  // devices, interfaces and namespaces
  'io-native-missing': code('DeviceError', 'the native addon (calitap_io) is not built or cannot load'),
  'uplink-open': code('DeviceError', 'the uplink port cannot be opened'),
  'no-netns': code('DeviceError', 'the named network namespace does not exist'),
  'ip-command': code('DeviceError', 'an iproute2 command (`ip ...`) failed or printed something unreadable'),
  'command-failed': code('DeviceError', 'another system command failed'),
  'tools-missing': code('DeviceError', 'system tools a command needs (ping, iperf3, ...) are not installed'),
  // the shared dataplane tables (programmed by the control thread)
  'adjacency-table-full': code(
    'TableError',
    'the adjacency table has no free entry (routes refused until some are freed)',
  ),
  'neighbor-table-full': code(
    'TableError',
    'the neighbour table has no free entry (routes refused until some are freed)',
  ),
  'policy-table-full': code(
    'TableError',
    'the compiled policy does not fit the policy table (the policy in force stays)',
  ),
  // workloads
  'workload-exists': code('WorkloadError', 'a workload with this name (or its port) is already attached'),
  'no-workload': code('WorkloadError', 'no workload has this name'),
  // the daemon and its control API
  'no-daemon': code('ControlApiError', 'the control socket does not answer: no daemon is running there'),
  timeout: code('ControlApiError', 'the daemon did not answer a control request in time'),
  'unknown-method': code('ControlApiError', 'the control API has no such method'),
  'bad-request': code('ControlApiError', 'a control request is malformed or has an invalid parameter'),
  'too-long': code('ControlApiError', 'a control request line exceeds the size limit'),
  'bad-reply': code('ControlApiError', "the daemon's reply is not the API's JSON"),
  'remote-error': code('ControlApiError', 'the daemon answered with an error code this CLI does not know'),
  'workers-start': code('DaemonError', 'the dataplane workers did not start in time'),
  'workers-busy': code('DaemonError', 'the dataplane workers did not apply a change in time'),
  'daemon-start': code('DaemonError', 'a calitap daemon (lab, demo) exited or did not answer while starting'),
  // benchmarks
  'bench-missing': code('BenchError', 'a benchmark script is not built'),
  'bench-failed': code('BenchError', 'a benchmark process exited with a failure'),
  // everything else
  system: code('SystemError', 'a system call failed (errno from the native addon or Node)'),
  internal: code('InternalError', 'a bug: an unexpected error inside calitap'),
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(s: unknown): s is ErrorCode {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CODES, s);
}

/** Codes of one family (the subclass named in the registry). */
type CodesOf<F extends string> = {
  [K in ErrorCode]: (typeof ERROR_CODES)[K]['family'] extends F ? K : never;
}[ErrorCode];

export interface CalitapErrorOptions {
  /** the underlying error (kept for logs and `--debug`-style output, never printed by the CLI) */
  cause?: unknown;
  /** multi-line detail for logs and test failures (e.g. a daemon's log tail); not part of the message */
  details?: string;
}

export class CalitapError extends Error {
  readonly details?: string;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: CalitapErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CalitapError';
    if (options.details !== undefined) this.details = options.details;
  }

  /** The `calitap` exit status for this error (from the registry). */
  get exitStatus(): ExitStatus {
    return ERROR_CODES[this.code].exit;
  }
}

/** Invalid configuration: `code` is always `config-invalid`; message names resource, field, value. */
export class ConfigError extends CalitapError {
  constructor(message: string, options?: CalitapErrorOptions) {
    super('config-invalid', message, options);
    this.name = 'ConfigError';
  }
}

/** Unreadable or malformed capture file. */
export class CaptureError extends CalitapError {
  constructor(message: string, options?: CalitapErrorOptions) {
    super('capture-invalid', message, options);
    this.name = 'CaptureError';
  }
}

/** Bad command-line usage (unknown port, missing option). */
export class UsageError extends CalitapError {
  constructor(message: string, options?: CalitapErrorOptions) {
    super('usage', message, options);
    this.name = 'UsageError';
  }
}

/** The datastore (file or etcd v3) failed or refused. */
export class DatastoreError extends CalitapError {
  constructor(code: CodesOf<'DatastoreError'>, message: string, options?: CalitapErrorOptions) {
    super(code, message, options);
    this.name = 'DatastoreError';
  }
}

/** IP address management refused an allocation or an address. */
export class IpamError extends CalitapError {
  constructor(code: CodesOf<'IpamError'>, message: string, options?: CalitapErrorOptions) {
    super(code, message, options);
    this.name = 'IpamError';
  }
}

/**
 * The BGP speaker's own failures (options, listener, connections). Not to be confused with the
 * codec's `BgpError` (control/bgp/types.ts), which describes a NOTIFICATION to send to a peer.
 */
export class BgpSpeakerError extends CalitapError {
  constructor(code: CodesOf<'BgpSpeakerError'>, message: string, options?: CalitapErrorOptions) {
    super(code, message, options);
    this.name = 'BgpSpeakerError';
  }
}

/** A shared dataplane table refused an entry (nothing was changed; it accepts again once entries free). */
export class TableError extends CalitapError {
  constructor(code: CodesOf<'TableError'>, message: string, options?: CalitapErrorOptions) {
    super(code, message, options);
    this.name = 'TableError';
  }
}

/** Ports, interfaces, namespaces and the system commands that set them up. */
export class DeviceError extends CalitapError {
  constructor(code: CodesOf<'DeviceError'>, message: string, options?: CalitapErrorOptions) {
    super(code, message, options);
    this.name = 'DeviceError';
  }
}

/** Workload attach/detach refused. */
export class WorkloadError extends CalitapError {
  constructor(code: CodesOf<'WorkloadError'>, message: string, options?: CalitapErrorOptions) {
    super(code, message, options);
    this.name = 'WorkloadError';
  }
}

/** The control API (unix socket between the CLI and the daemon). */
export class ControlApiError extends CalitapError {
  constructor(code: CodesOf<'ControlApiError'>, message: string, options?: CalitapErrorOptions) {
    super(code, message, options);
    this.name = 'ControlApiError';
  }
}

/** The daemon itself (workers, start-up). */
export class DaemonError extends CalitapError {
  constructor(code: CodesOf<'DaemonError'>, message: string, options?: CalitapErrorOptions) {
    super(code, message, options);
    this.name = 'DaemonError';
  }
}

/** `calitap bench`. */
export class BenchError extends CalitapError {
  constructor(code: CodesOf<'BenchError'>, message: string, options?: CalitapErrorOptions) {
    super(code, message, options);
    this.name = 'BenchError';
  }
}

/** Node's and the native addon's system-error shape (see dataplane/devices/native.ts IoSysError). */
interface ErrnoLike {
  message: string;
  code?: unknown;
  errno?: unknown;
  syscall?: unknown;
}

function isErrnoLike(e: unknown): e is ErrnoLike {
  return e instanceof Error && typeof (e as ErrnoLike).errno === 'number';
}

/**
 * A failing system call, wrapping the errno error of the native addon or of Node: the message is
 * `<what>: <the error's message>`; `errnoName` ('ENODEV'), `errno` and `syscall` are kept.
 */
export class SystemError extends CalitapError {
  readonly errnoName?: string;
  readonly errno?: number;
  readonly syscall?: string;

  constructor(what: string, cause: unknown) {
    const m = cause instanceof Error ? cause.message : String(cause);
    super('system', `${what}: ${m.split('\n')[0]}`, { cause });
    this.name = 'SystemError';
    if (isErrnoLike(cause)) {
      if (typeof cause.code === 'string') this.errnoName = cause.code;
      this.errno = cause.errno as number;
      if (typeof cause.syscall === 'string') this.syscall = cause.syscall;
    }
  }
}

/** A bug: something calitap did not expect. The CLI prints these with their stack. */
export class InternalError extends CalitapError {
  constructor(message: string, options?: CalitapErrorOptions) {
    super('internal', message, options);
    this.name = 'InternalError';
  }
}

/**
 * What to rethrow for an error caught around `what` (e.g. `workload add w1`): a CalitapError as it
 * is, an errno error as a SystemError, anything else as an InternalError (a bug).
 */
export function asCalitapError(e: unknown, what: string): CalitapError {
  if (e instanceof CalitapError) return e;
  if (isErrnoLike(e)) return new SystemError(what, e);
  const m = e instanceof Error ? e.message : String(e);
  return new InternalError(`${what}: ${m.split('\n')[0]}`, { cause: e });
}
