/** The bearer API key, compared in constant time (over digests, so the key's length does not leak either). */
import { createHash, timingSafeEqual } from 'crypto';
import type { IncomingMessage } from 'http';

import { HttpError } from './http_error';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** A check of requests against `key`; with no key every request passes. */
export function bearerCheck(key: string | undefined): (req: IncomingMessage) => void {
  if (key === undefined) return () => undefined;
  const want = digest(key);
  return (req) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!m) throw new HttpError(401, 'unauthorized', 'this server needs an API key: send "Authorization: Bearer KEY"', { 'www-authenticate': 'Bearer' });
    if (!timingSafeEqual(digest(m[1]), want)) throw new HttpError(401, 'unauthorized', 'the API key is not valid', { 'www-authenticate': 'Bearer' });
  };
}
