// Request ids: a caller's x-request-id is kept when it is a sane token (so traces join up across
// hops), otherwise a fresh one is made. Anything odd is replaced, never echoed into logs as-is.
import { randomUUID } from 'node:crypto';

const SANE = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdFrom(header: string | string[] | undefined): string {
  return typeof header === 'string' && SANE.test(header) ? header : randomUUID();
}
