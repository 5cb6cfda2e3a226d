// The daemon's control API: newline-delimited JSON requests and responses on a unix socket.
//   request  {"id": 1, "method": "routes", "params": {...}}
//   response {"id": 1, "result": ...}  or  {"id": 1, "error": {"code": "...", "message": "..."}}
// Runs on the daemon's main thread (server) and in the CLI (client). One request per line; a client
// may pipeline. Malformed lines get an error response; they never affect the daemon.
import * as net from 'node:net';
import * as fs from 'node:fs';
import { CalitapError, ControlApiError, isErrorCode } from '../../common/errors.js';

export const DEFAULT_SOCKET = '/run/calitap/calitap.sock';

export type Handler = (params: Record<string, unknown>) => unknown;

export interface ApiServer {
  close(): Promise<void>;
}

/** Longest request line the server buffers (1 MiB): a peer sending more without a newline is cut off. */
/** Longest request line the server buffers (1 MiB): a peer sending more without a newline is cut off. */
const MAX_LINE = 1 << 20;

export function startApiServer(path: string, handlers: Record<string, Handler>): Promise<ApiServer> {
  fs.mkdirSync(path.slice(0, path.lastIndexOf('/')) || '/', { recursive: true });
  try {
    fs.unlinkSync(path); // a stale socket from a previous (killed) daemon
  } catch {
    /* none */
  }
  const server = net.createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => sock.destroy());
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_LINE && buf.indexOf('\n') < 0) {
        sock.end(
          JSON.stringify({ id: null, error: { code: 'too-long', message: 'request line too long' } }) + '\n',
        );
        buf = '';
        return;
      }
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() !== '') void answer(sock, line, handlers);
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      fs.chmodSync(path, 0o660);
      resolve({ close: () => new Promise<void>((r) => server.close(() => r())) });
    });
  });
}

async function answer(sock: net.Socket, line: string, handlers: Record<string, Handler>): Promise<void> {
  let id: unknown = null;
  let reply: unknown;
  try {
    const req = JSON.parse(line) as { id?: unknown; method?: unknown; params?: unknown };
    id = req.id ?? null;
    const h = typeof req.method === 'string' ? handlers[req.method] : undefined;
    if (h === undefined) throw new ControlApiError('unknown-method', `unknown method ${String(req.method)}`);
    const params =
      req.params !== null && typeof req.params === 'object' ? (req.params as Record<string, unknown>) : {};
    reply = { id, result: await h(params) };
  } catch (e) {
    // a handler's non-Calitap error is a bug in the daemon: reported as `internal`, never as its class
    const code = e instanceof CalitapError ? e.code : e instanceof SyntaxError ? 'bad-request' : 'internal';
    reply = { id, error: { code, message: e instanceof Error ? e.message : String(e) } };
  }
  if (!sock.destroyed) sock.write(JSON.stringify(reply) + '\n');
}

/** One request to a running daemon; rejects with CalitapError (code from the daemon, or `no-daemon`). */
export function callApi(
  path: string,
  method: string,
  params: Record<string, unknown> = {},
  timeoutMs = 30_000,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(path);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new ControlApiError('timeout', `${path}: no answer to ${method} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify({ id: 1, method, params }) + '\n'));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new ControlApiError(
          'no-daemon',
          `${path}: cannot reach the calitap daemon (${e.code ?? e.message}); is \`calitap run\` running?`,
        ),
      );
    });
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      sock.end();
      let res: { result?: unknown; error?: { code?: unknown; message?: unknown } };
      try {
        res = JSON.parse(buf.slice(0, nl)) as typeof res;
      } catch {
        reject(new ControlApiError('bad-reply', `${path}: ${method}: the daemon's reply is not JSON`));
        return;
      }
      if (res.error) reject(errorFromReply(path, res.error));
      else resolve(res.result);
    });
  });
}

/** The CalitapError for an `error` member of a reply: its code when this CLI knows it. */
function errorFromReply(path: string, err: { code?: unknown; message?: unknown }): CalitapError {
  const message = typeof err.message === 'string' ? err.message : JSON.stringify(err.message);
  if (err.code === 'internal')
    return new ControlApiError(
      'remote-error',
      `${path}: internal error in the daemon (see its log): ${message}`,
    );
  if (isErrorCode(err.code)) return new CalitapError(err.code, message);
  return new ControlApiError('remote-error', `${path}: ${message} (code ${String(err.code)})`);
}
