// Progress of a long `calitap replay` on the terminal: one line on stderr, rewritten in place
// (`replay: 42% 1.2 of 2.9 MB, 120000 frames, 85000 frames/s`), shown only once a run has taken more
// than a few seconds, only when stderr is a TTY, never with --quiet; cleared when the run ends, so
// what stays on the screen is the summary. The replay loop calls `onProgress(framesDone, bytesDone,
// totalBytes)` (bytes of the input captures read so far and in all); the printer decides when to
// draw. Runs on the thread that runs the replay (main), synchronously inside its loop: it allocates
// only when it draws, at most every `intervalMs`. Clock and stream are injected for tests.

/** The callback the replay loop calls; cheap enough to call once per batch. */
export type ProgressCallback = (framesDone: number, bytesDone: number, totalBytes: number) => void;

/** The part of a tty.WriteStream the printer uses. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(s: string): unknown;
}

export interface ProgressOptions {
  stream: ProgressStream;
  /** --quiet: never draw */
  quiet?: boolean;
  /** milliseconds, monotonic (default performance.now) */
  now?: () => number;
  /** nothing is drawn before the run has taken this long (ms) */
  delayMs?: number;
  /** at most one redraw per interval (ms) */
  intervalMs?: number;
}

/** Runs shorter than this print no progress at all. */
export const PROGRESS_DELAY_MS = 2000;
/** Redraw at most every this many ms. */
export const PROGRESS_INTERVAL_MS = 250;
const ERASE_LINE = '\r\x1b[K';
const MB = 1e6;

export interface ProgressPrinter {
  onProgress: ProgressCallback;
  /** Erases the progress line if one was drawn (call when the run ends, also on failure). */
  done(): void;
  /** whether anything was drawn (for tests) */
  readonly drawn: boolean;
}

/** Formats one progress line (no control characters). */
export function formatProgress(frames: number, bytes: number, total: number, elapsedMs: number): string {
  const pct = total > 0 ? Math.min(100, Math.floor((bytes / total) * 100)) : 0;
  const rate = elapsedMs > 0 ? Math.round((frames * 1000) / elapsedMs) : 0;
  return `replay: ${pct}% ${(bytes / MB).toFixed(1)} of ${(total / MB).toFixed(1)} MB, ${frames} frames, ${rate} frames/s`;
}

/** A printer that draws on `stream`, or one that never draws (quiet, or not a terminal). */
export function progressPrinter(o: ProgressOptions): ProgressPrinter {
  const now = o.now ?? (() => performance.now());
  const delay = o.delayMs ?? PROGRESS_DELAY_MS;
  const interval = o.intervalMs ?? PROGRESS_INTERVAL_MS;
  const enabled = o.quiet !== true && o.stream.isTTY === true;
  const start = now();
  let next = start + delay;
  let drawn = false;
  return {
    onProgress(frames, bytes, total) {
      if (!enabled) return;
      const t = now();
      if (t < next) return;
      next = t + interval;
      let line = formatProgress(frames, bytes, total, t - start);
      const cols = o.stream.columns;
      if (cols !== undefined && cols > 1 && line.length >= cols) line = line.slice(0, cols - 1);
      o.stream.write(ERASE_LINE + line);
      drawn = true;
    },
    done() {
      if (drawn) o.stream.write(ERASE_LINE);
      drawn = false;
    },
    get drawn() {
      return drawn;
    },
  };
}
