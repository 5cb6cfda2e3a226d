// The control plane's one error family. Every error has a stable `code` (for tests and scripts) and a
// one-line message naming the file, resource, field or value at fault. The dataplane never throws on
// packets: it counts and drops (see dataplane/counters.ts).

export class CalitapError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'CalitapError';
  }
}

/** Invalid configuration: `code` is always `config-invalid`; message names resource, field, value. */
export class ConfigError extends CalitapError {
  constructor(message: string) {
    super('config-invalid', message);
    this.name = 'ConfigError';
  }
}

/** Unreadable or malformed capture file. */
export class CaptureError extends CalitapError {
  constructor(message: string) {
    super('capture-invalid', message);
    this.name = 'CaptureError';
  }
}

/** Bad command-line usage (unknown port, missing option). */
export class UsageError extends CalitapError {
  constructor(message: string) {
    super('usage', message);
    this.name = 'UsageError';
  }
}
