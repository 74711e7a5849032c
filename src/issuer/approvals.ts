// Just-in-time approvals: a time-boxed grant of one role to one client, optionally for one
// audience. A token request that names the approval (`approval=<id>`) gets the role, and a
// lifetime that ends no later than the approval does. An approval can be redeemed any number
// of times inside its window, so a sidecar that refreshes its cached token keeps the elevation
// until the window closes, and not a second longer.
import { randomBytes } from 'node:crypto';
import type { IssuerClient } from './clients.ts';

export interface Approval {
  readonly id: string;
  readonly client: string;
  readonly role: string;
  /** null: any audience the client is configured for */
  readonly audience: string | null;
  readonly createdAt: Date;
  readonly expiresAt: Date;
}

export interface ApprovalRequest {
  client: string;
  role: string;
  /** how long the approval lasts */
  forMs: number;
  audience?: string | null;
}

export const MIN_APPROVAL_MS = 1000;
export const MAX_APPROVAL_MS = 24 * 3_600_000;
// Expired approvals are remembered a while so a late request is told "expired", not "unknown".
const REMEMBER_EXPIRED_MS = 3_600_000;

/** The approval request itself is wrong (unknown client, bad role or duration). */
export class ApprovalRequestInvalid extends Error {
  constructor(message: string) { super(message); this.name = 'ApprovalRequestInvalid'; }
}

/** A token request named an approval it may not use. */
export class ApprovalRefused extends Error {
  constructor(message: string) { super(message); this.name = 'ApprovalRefused'; }
}

export class ApprovalStore {
  readonly #clients: ReadonlyMap<string, IssuerClient>;
  readonly #byId = new Map<string, Approval>();
  readonly #now: () => number;

  constructor(clients: ReadonlyMap<string, IssuerClient>, now: () => number = Date.now) {
    this.#clients = clients;
    this.#now = now;
  }

  grant(req: ApprovalRequest): Approval {
    const client = this.#clients.get(req.client);
    if (!client) throw new ApprovalRequestInvalid(`unknown client '${req.client}'`);
    if (typeof req.role !== 'string' || !/^[\x21-\x7e]{1,256}$/.test(req.role)) {
      throw new ApprovalRequestInvalid('role must be 1-256 visible ASCII characters');
    }
    if (!Number.isFinite(req.forMs) || req.forMs < MIN_APPROVAL_MS || req.forMs > MAX_APPROVAL_MS) {
      throw new ApprovalRequestInvalid('duration must be between 1s and 24h');
    }
    const audience = req.audience ?? null;
    if (audience !== null && !client.audiences.has(audience)) {
      throw new ApprovalRequestInvalid(`client '${client.id}' has no audience '${audience}' (configured: ${[...client.audiences.keys()].join(', ')})`);
    }
    this.#sweep();
    const now = this.#now();
    const approval: Approval = Object.freeze({
      id: `apv_${randomBytes(12).toString('base64url')}`,
      client: client.id,
      role: req.role,
      audience,
      createdAt: new Date(now),
      expiresAt: new Date(now + req.forMs),
    });
    this.#byId.set(approval.id, approval);
    return approval;
  }

  /**
   * The approval `id` as usable by `clientId` for `audience` now, with its remaining time;
   * throws ApprovalRefused otherwise.
   */
  redeem(id: string, clientId: string, audience: string): { approval: Approval; remainingMs: number } {
    const approval = this.#byId.get(id);
    if (!approval) throw new ApprovalRefused('approval is unknown');
    if (approval.client !== clientId) throw new ApprovalRefused('approval was not granted to this client');
    const remainingMs = approval.expiresAt.getTime() - this.#now();
    // Tokens count whole seconds: less than one left is nothing left.
    if (remainingMs < 1000) throw new ApprovalRefused(`approval expired at ${approval.expiresAt.toISOString()}`);
    if (approval.audience !== null && approval.audience !== audience) {
      throw new ApprovalRefused(`approval is for audience ${approval.audience}, not ${audience}`);
    }
    return { approval, remainingMs };
  }

  /** Approvals still in force, oldest first. */
  active(): Approval[] {
    const now = this.#now();
    return [...this.#byId.values()].filter((a) => a.expiresAt.getTime() > now);
  }

  #sweep(): void {
    const cutoff = this.#now() - REMEMBER_EXPIRED_MS;
    for (const [id, a] of this.#byId) if (a.expiresAt.getTime() < cutoff) this.#byId.delete(id);
  }
}
