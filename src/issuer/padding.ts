// Oversized tokens on demand: a padding claim sized so the signed JWT is (almost exactly) the
// requested length, to exercise header limits on every hop. A compact JWS is
// b64(header).b64(payload).b64(signature), so its length follows from the JSON sizes and can be
// computed before signing. Random base64url padding does not compress under HPACK or gzip,
// as a real token full of group claims would not.
import { randomBytes } from 'node:crypto';

export const PADDING_CLAIM = 'pad';

const b64len = (bytes: number): number => Math.ceil((bytes * 4) / 3);

/**
 * Add the padding claim to `payload` so that the compact JWS with `header` and a signature of
 * `signatureBytes` is at most `targetLength` characters and at least `targetLength - 2`.
 * A token already that long is left alone.
 */
export function padPayload(payload: Record<string, unknown>, header: Record<string, unknown>,
  signatureBytes: number, targetLength: number): void {
  const fixed = b64len(Buffer.byteLength(JSON.stringify(header))) + b64len(signatureBytes) + 2;
  const payloadBytes = Math.floor(((targetLength - fixed) * 3) / 4);
  const base = Buffer.byteLength(JSON.stringify({ ...payload, [PADDING_CLAIM]: '' }));
  const n = payloadBytes - base;
  if (n <= 0) return;
  payload[PADDING_CLAIM] = randomBytes(Math.ceil((n * 3) / 4) + 3).toString('base64url').slice(0, n);
}
