// oidc-provider's storage for the dev issuer: in memory, bounded, entries expire with the
// artefact they hold. Client-credentials tokens and client-assertion jti replay records are all
// it stores; nothing survives a restart, which is what a dev issuer wants (and why the
// library's own "development-only adapter" warning does not apply).
import { LRUCache } from 'lru-cache';

type Payload = Record<string, unknown>;

export function memoryAdapter(maxEntries = 50_000): (model: string) => MemoryAdapter {
  const store = new LRUCache<string, Payload>({ max: maxEntries });
  return (model: string) => new MemoryAdapter(model, store);
}

export class MemoryAdapter {
  readonly #model: string;
  readonly #store: LRUCache<string, Payload>;
  constructor(model: string, store: LRUCache<string, Payload>) { this.#model = model; this.#store = store; }

  #key(id: string): string { return `${this.#model}:${id}`; }

  async upsert(id: string, payload: Payload, expiresIn?: number): Promise<void> {
    this.#store.set(this.#key(id), payload, expiresIn ? { ttl: expiresIn * 1000 } : {});
  }
  async find(id: string): Promise<Payload | undefined> { return this.#store.get(this.#key(id)); }
  async findByUid(_uid: string): Promise<undefined> { return undefined; }
  async findByUserCode(_userCode: string): Promise<undefined> { return undefined; }
  async consume(id: string): Promise<void> {
    const p = this.#store.get(this.#key(id));
    if (p) p.consumed = Math.floor(Date.now() / 1000);
  }
  async destroy(id: string): Promise<void> { this.#store.delete(this.#key(id)); }
  // Client credentials carry no grant; there is nothing to revoke by grant id.
  async revokeByGrantId(_grantId: string): Promise<void> {}
}
