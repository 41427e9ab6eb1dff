/**
 * applyPlan(client, plan): sends a plan's requests in dependency order (phase 0 audit devices, so that everything
 * after them is audited; 1 mounts and auth methods; 2 auth config and policies; 3 roles; 4 deletions of policies and
 * auth methods), each phase concurrently with a small pool.
 * Every request carries the full desired state of its object, so a run that stops half-way is converged by the next.
 */
import { SealkeeperError, UsageError, VaultHttpError } from "../errors.js";
import type { VaultClient } from "../vault/client.js";
import { PHASES } from "./kinds/context.js";
import { resolveRefs } from "./kinds/identity.js";
import type { Plan, PlannedChange } from "./plan.js";
import { runPool } from "./pool.js";

export interface ApplyOptions {
  /** Requests in flight at once within a phase (default 8). */
  concurrency?: number;
  /** Called after each step succeeds (for progress output). */
  onStep?: (change: PlannedChange) => void;
  /** Aborted (a signal): no new step starts; the ones in flight finish; then ApplyInterruptedError. */
  stop?: AbortSignal;
  /** Names the signal for the error (default SIGTERM). */
  stoppedBy?: () => import("../util/critical-section.js").DeferrableSignal | undefined;
}

export interface ApplyResult {
  /** Ids of the steps applied, in completion order. */
  applied: string[];
  /** Write requests sent. */
  requests: number;
}

/**
 * A step failed: names the step, says how far apply got and that a rerun converges. Exit code of the cause. `sealed`:
 * the server was found sealed right after the failure (a seal cuts off the requests in flight: Vault 1.21 answers
 * 503 "Vault is sealed", OpenBao 2.6.2 may answer 400 "... context canceled" to one already being served).
 */
export class ApplyStepError extends SealkeeperError {
  constructor(
    readonly step: string,
    readonly done: number,
    readonly total: number,
    cause: unknown,
    readonly sealed = false,
  ) {
    const detail =
      cause instanceof VaultHttpError
        ? `${cause.status} ${cause.errors.join("; ") || "no error message"}`
        : cause instanceof Error
          ? cause.message
          : String(cause);
    super(`${step} failed: ${detail}${sealed ? " (the server is sealed now: the seal cut the request off)" : ""}`, {
      cause,
      exitCode: cause instanceof SealkeeperError ? cause.exitCode : 1,
      progress: { step, applied: done, total },
      hint: sealed
        ? `${done} of ${total} steps were applied; unseal the server (sealkeeper unseal), then run apply again: it continues from the server's state`
        : `${done} of ${total} steps were applied; fix the cause and run apply again: it continues from the server's state`,
    });
  }
}

/**
 * Applies a plan. Refuses a plan with conflicts (UsageError) before sending anything.
 * @throws ApplyStepError naming the first step that failed (the others in flight finish first; later phases do not start).
 */
export async function applyPlan(client: VaultClient, plan: Plan, opts: ApplyOptions = {}): Promise<ApplyResult> {
  if (plan.conflicts.length > 0) {
    throw new UsageError(`the plan has ${plan.conflicts.length} conflict(s): ${plan.conflicts[0]}`);
  }
  const limit = opts.concurrency ?? 8;
  const applied: string[] = [];
  let requests = 0;
  for (const phase of PHASES) {
    const steps = plan.changes.filter((c) => c.phase === phase);
    if (steps.length === 0) continue;
    await runPool(
      steps,
      limit,
      async (change) => {
        try {
          for (const req of change.requests) {
            requests++;
            if (req.method === "DELETE") await client.delete(req.path);
            else await client.write(req.path, req.refs ? await resolveRefs(client, req) : (req.body ?? {}));
          }
        } catch (err) {
          throw new ApplyStepError(change.id, applied.length, plan.changes.length, err, await sealedNow(client, err));
        }
        applied.push(change.id);
        opts.onStep?.(change);
      },
      opts.stop,
    );
    if (opts.stop?.aborted) {
      const { InterruptedError } = await import("../util/interrupt.js");
      const sig = opts.stoppedBy?.() ?? "SIGTERM";
      throw new InterruptedError(
        sig,
        `apply stopped by ${sig} after ${applied.length} of ${plan.changes.length} steps (${requests} write request(s) sent)`,
        {
          hint: "every step writes the whole desired state of its object: run the same apply again and it converges from the server's state",
          progress: { applied: applied.length, total: plan.changes.length },
        },
      );
    }
  }
  return { applied, requests };
}

/**
 * Whether a refusal was the seal's doing, whatever its status code: the server is sealed now. After a 503, or
 * OpenBao's "context canceled" (its seal cancels the requests it is serving before it reports sealed), seal-status is
 * watched for up to 3 s while the seal completes; any other refusal is looked at once.
 */
async function sealedNow(client: VaultClient, err: unknown): Promise<boolean> {
  if (!(err instanceof VaultHttpError)) return false;
  const likely = err.status === 503 || /context canceled/i.test(err.errors.join("; "));
  const deadline = Date.now() + (likely ? 3000 : 0);
  for (;;) {
    const status = await Promise.resolve()
      .then(() => client.sealStatus())
      .catch(() => undefined);
    if (status?.sealed) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}
