/**
 * The small HTTP answers of the headless server: JSON and plain text, never cached, and the 421
 * for an unknown Host.
 *
 * @example
 * sendJson(res, 401, failure('unauthorized', 'wrong token'), true);   // true: Connection: close
 * closeAfter(req, res);                                             // the body is not read
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export const refuseHost = (res: ServerResponse): void => {
  res.writeHead(421, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Cache-Control': 'no-store',
    Connection: 'close',
  });
  res.end('Misdirected request: unknown Host\n');
};

export const sendJson = (res: ServerResponse, status: number, body: unknown, close = false): void => {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...(close ? { Connection: 'close' } : {}),
  });
  res.end(text);
};

export const sendText = (
  res: ServerResponse,
  status: number,
  text: string,
  extra: Record<string, string> = {},
) => {
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...extra,
  });
  res.end(text);
};

/** Ends a connection whose request body we will not read, after the response has gone out. */
export const closeAfter = (req: IncomingMessage, res: ServerResponse): void => {
  res.on('finish', () => {
    setTimeout(() => req.socket.destroy(), 5_000).unref();
  });
};
