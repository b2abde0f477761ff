import { hash as digest } from 'node:crypto';
import { canonicalEvent } from './canonical.js';

/** Chain of events that belong to the MSP itself rather than to one client tenant. */
export const MSP_CHAIN = 'msp';
export const GENESIS_HASH = '0'.repeat(64);

export type ActorType = 'user' | 'service' | 'system';

/**
 * Why an action was allowed: the role bindings, approvals, policy version or ticket behind it.
 * Free-form beyond these keys so later capabilities can add their own evidence.
 */
export interface Authority {
  roles?: string[];
  bindingIds?: string[];
  approvalIds?: string[];
  policyVersion?: number;
  ticket?: string;
  requestId?: string;
  [key: string]: unknown;
}

/** What the caller supplies; the chain adds seq, prevHash and hash. */
export interface AuditEventInput {
  tenantId: string;
  eventId: string;
  occurredAt: string;
  actor: { id: string; type: ActorType };
  action: string;
  target: { type: string; id: string } | null;
  authority: Authority;
  workflowId: string | null;
  runId: string | null;
  payload: Record<string, unknown>;
}

export interface AuditEvent extends AuditEventInput {
  seq: number;
  prevHash: string;
  hash: string;
}

/**
 * SHA-256 over the RFC 8785 (JCS) canonical JSON of every field but `hash`, so anyone can
 * recompute it from an export with any JSON library, without Tenure.
 */
export function hashEvent(event: Omit<AuditEvent, 'hash'>): string {
  return digest('sha256', canonicalEvent(event), 'hex');
}

export interface VerifyResult {
  intact: boolean;
  checked: number;
  /** Sequence number of the first event that does not verify (or where one is missing). */
  firstBadSeq: number | null;
  reason: string | null;
  lastSeq: number | null;
  lastHash: string | null;
}

/**
 * Streaming chain verifier: feed events in export order. It detects an altered event (hash),
 * a removed or inserted one (seq gap or prev-hash link), and a reordering (seq not next).
 */
export class ChainVerifier {
  private expectedSeq = 1;
  private prevHash = GENESIS_HASH;
  private chain: string | undefined;
  // Plain fields rather than a result object rebuilt per event: this runs once per event.
  private checked = 0;
  private broken: { seq: number; reason: string } | undefined;

  /** Returns false once the chain is broken; later events are not checked. */
  push(event: AuditEvent): boolean {
    if (this.broken) return false;
    if (this.chain !== undefined && event.tenantId !== this.chain) return this.fail(`event from another chain (${event.tenantId})`);
    this.chain = event.tenantId;
    if (event.seq > this.expectedSeq) return this.fail(`event ${this.expectedSeq} is missing`);
    if (event.seq < this.expectedSeq) return this.fail(`event ${event.seq} is out of order or repeated`, event.seq);
    if (event.prevHash !== this.prevHash) return this.fail('prevHash does not match the previous event', event.seq);
    if (hashEvent(event) !== event.hash) return this.fail('hash does not match the event content', event.seq);
    this.expectedSeq++;
    this.prevHash = event.hash;
    this.checked++;
    return true;
  }

  private fail(reason: string, seq = this.expectedSeq): false {
    this.broken = { seq, reason };
    return false;
  }

  /** `expectedHead` (from the live chain) also catches events cut off the end of an export. */
  finish(expectedHead?: { seq: number; hash: string }): VerifyResult {
    const lastSeq = this.checked > 0 ? this.expectedSeq - 1 : null;
    const lastHash = this.checked > 0 ? this.prevHash : null;
    const result: VerifyResult = {
      intact: this.broken === undefined,
      checked: this.checked,
      firstBadSeq: this.broken?.seq ?? null,
      reason: this.broken?.reason ?? null,
      lastSeq,
      lastHash,
    };
    if (result.intact && expectedHead && (expectedHead.seq !== lastSeq || expectedHead.hash !== lastHash)) {
      return {
        ...result,
        intact: false,
        firstBadSeq: (lastSeq ?? 0) + 1,
        reason: `the chain head is ${expectedHead.seq}, the events end at ${lastSeq ?? 0}`,
      };
    }
    return result;
  }
}
