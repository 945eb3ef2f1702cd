import { HttpError } from './errors.js';
import { matchesPath } from './request-log.js';

/**
 * A fault the emulator injects into matching requests, after the route's own middleware (authentication,
 * lookups) and before its handler. `delayMs` combines with either `status` or `drop`.
 */
export interface FaultRule {
  /** Only requests with this method (any when omitted). */
  method?: string;
  /** Only requests whose path equals this string or matches this RegExp (any when omitted). */
  path?: string | RegExp;
  /** How many matching requests the rule acts on before it retires. Default 1; `Infinity` for all. */
  times?: number;
  /** Wait this long before answering (or before the `status`/`drop` below). */
  delayMs?: number;
  /** Answer with this status (a 5xx, 429...) instead of calling the handler; the vendor's error body. */
  status?: number;
  /** The error's `code` (passed to the vendor's `errorResponse`); default `injected_fault`. */
  code?: string;
  /** The error's message; default `injected fault: <status>`. */
  message?: string;
  /** `retryable: false` on the error (vendors turn it into their no-retry header). */
  retryable?: boolean;
  /** Destroy the connection without answering, as a network failure would. */
  drop?: boolean;
}

/** A rule once added: how many more requests it will act on, and a way to withdraw it. */
export interface FaultHandle {
  readonly remaining: number;
  cancel(): void;
}

/** What the server should do with a request a rule matched. */
export type FaultAction = { delayMs: number; kind: 'delay' | 'status' | 'drop'; error?: HttpError };

interface ActiveRule {
  rule: FaultRule;
  remaining: number;
}

/** The fault rules of one emulator. Rules are tried in the order they were added; the first match acts. */
export class FaultInjector {
  readonly #rules: ActiveRule[] = [];

  /** Add a rule; it acts on the next `times` matching requests. */
  add(rule: FaultRule): FaultHandle {
    if (rule.status !== undefined && rule.drop) throw new Error('a fault rule cannot both answer and drop');
    const active: ActiveRule = { rule, remaining: rule.times ?? 1 };
    if (active.remaining > 0) this.#rules.push(active);
    const rules = this.#rules;
    return {
      get remaining() {
        return active.remaining;
      },
      cancel() {
        active.remaining = 0;
        const index = rules.indexOf(active);
        if (index >= 0) rules.splice(index, 1);
      },
    };
  }

  /** Withdraw every rule. */
  clear(): void {
    this.#rules.length = 0;
  }

  /** Consume one use of the first rule matching the request, and say what it does. */
  take(method: string, path: string): FaultAction | undefined {
    const index = this.#rules.findIndex(
      ({ rule }) =>
        (rule.method === undefined || rule.method.toUpperCase() === method) &&
        (rule.path === undefined || matchesPath(rule.path, path)),
    );
    const active = this.#rules[index];
    if (!active) return undefined;
    active.remaining -= 1;
    if (active.remaining <= 0) this.#rules.splice(index, 1);
    const { rule } = active;
    const delayMs = rule.delayMs ?? 0;
    if (rule.drop) return { delayMs, kind: 'drop' };
    if (rule.status === undefined) return { delayMs, kind: 'delay' };
    const error = new HttpError(rule.status, rule.message ?? `injected fault: ${rule.status}`, {
      code: rule.code ?? 'injected_fault',
      retryable: rule.retryable,
    });
    return { delayMs, kind: 'status', error };
  }
}
