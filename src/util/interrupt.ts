/**
 * Interruptible work that is NOT a critical section (every step can be repeated, e.g. bootstrap apply, whose requests
 * each carry the full desired state of their object): the first SIGINT, SIGTERM or SIGHUP stops it at the next step
 * boundary (no new request starts; the ones in flight get their answer), so that the run can say what was done and
 * exit with 128 + the signal's number, the shell's convention the critical sections use too
 * (src/util/critical-section.ts). A second signal ends the process at once with the same code.
 */
import { SealkeeperError } from "../errors.js";
import { DEFERRABLE_SIGNALS, type DeferrableSignal, SIGNAL_EXIT_CODES } from "./critical-section.js";

/** The run was stopped by a signal between steps. exitCode 128 + the signal's number. */
export class InterruptedError extends SealkeeperError {
  constructor(
    readonly signal: DeferrableSignal,
    message: string,
    opts: { hint?: string; progress?: SealkeeperError["progress"]; cause?: unknown } = {},
  ) {
    super(message, { ...opts, exitCode: SIGNAL_EXIT_CODES[signal] });
  }
}

export interface Interruption {
  /** Aborted by the first signal. */
  readonly signal: AbortSignal;
  /** The signal received, if any. */
  received(): DeferrableSignal | undefined;
}

/**
 * Runs `fn` with the deferrable signals turned into an abort of `interruption.signal`. `say` gets one line when the
 * first signal arrives (errors swallowed: the terminal may be gone). The handlers are removed when `fn` settles.
 */
export async function runInterruptible<T>(
  say: (line: string) => void,
  fn: (interruption: Interruption) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let got: DeferrableSignal | undefined;
  const handlers = new Map<DeferrableSignal, () => void>();
  for (const sig of DEFERRABLE_SIGNALS) {
    const h = () => {
      if (got !== undefined) {
        try {
          say(`sealkeeper: second ${sig}: stopping at once`);
        } catch {
          // the terminal may be gone
        }
        process.exit(SIGNAL_EXIT_CODES[got]);
      }
      got = sig;
      try {
        say(`sealkeeper: ${sig} received: no new step starts; the steps in flight finish, then the run stops`);
      } catch {
        // the terminal may be gone
      }
      controller.abort();
    };
    handlers.set(sig, h);
    process.on(sig, h);
  }
  try {
    return await fn({ signal: controller.signal, received: () => got });
  } finally {
    for (const [sig, h] of handlers) process.removeListener(sig, h);
  }
}
