/**
 * Critical sections: the stretch of a ceremony from an irreversible request (init, the completing share of a rekey or
 * a root generation, a seal migration) until its answer is safe on disk. Inside one, SIGINT, SIGTERM and SIGHUP do not
 * stop the process: the first one is announced once on stderr, the step finishes and writes everything as usual, and
 * afterwards the run exits with 128 + the signal's number (130 SIGINT, 143 SIGTERM, 129 SIGHUP: the shell's own
 * convention, so the code names the deferred signal). Outside critical sections signals behave as usual (Node's
 * default: the process ends at once). SIGKILL cannot be deferred by anyone: docs/security.md says what the next run
 * then reports.
 *
 * Sections nest (bootstrap cluster holds one around init, which holds its own); the handlers are installed by the
 * outermost one and removed when it ends. State is per process: a CLI run is one process.
 */

export const DEFERRABLE_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
export type DeferrableSignal = (typeof DEFERRABLE_SIGNALS)[number];

/** 128 + the signal number, as a shell reports a process ended by that signal. */
export const SIGNAL_EXIT_CODES: Record<DeferrableSignal, number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };

export interface CriticalSectionSpec {
  /** Completes "received while ...": e.g. "waiting for the server's init answer and writing it". */
  doing: string;
  /** Completes "stopping now would lose ...": e.g. "the only copy of the shares and the root token". */
  wouldLose: string;
  /** Where the one notice goes (stderr). Errors are swallowed: the terminal may be gone. */
  say: (line: string) => void;
  /**
   * Whether the step can no longer be waited for: asked at each signal. When it answers (e.g. "the answer has been
   * arriving for 40 s, longer than any Vault answer takes": a node streaming without end), a second signal within
   * FORCE_WINDOW_MS of the previous one stops the run at once, saying `why` and `note` (what was kept, what to do).
   * Absent or undefined: every signal is deferred, however many.
   */
  forceable?: () => { why: string; note: string } | undefined;
}

/** Two signals this close together stop a section that is `forceable` (a person pressing Ctrl-C twice). */
export const FORCE_WINDOW_MS = 3_000;

type Active = CriticalSectionSpec;

const stack: Active[] = [];
let deferred: DeferrableSignal | undefined;
let announced = false;
let forceHinted = false;
let lastSignalAt: number | undefined;
const handlers = new Map<DeferrableSignal, () => void>();

function sayTo(top: Active, line: string): void {
  try {
    top.say(line);
  } catch {
    // the terminal may be gone: the files matter, the notice does not
  }
}

function onSignal(sig: DeferrableSignal): void {
  const now = Date.now();
  const top = stack.at(-1);
  const force = top?.forceable?.();
  if (top && force && lastSignalAt !== undefined && now - lastSignalAt <= FORCE_WINDOW_MS) {
    const code = SIGNAL_EXIT_CODES[sig];
    sayTo(
      top,
      `sealkeeper: stopped after a second ${sig} within ${FORCE_WINDOW_MS / 1000} s, while ${top.doing} ` +
        `(${force.why}); ${force.note}: exit ${code}`,
    );
    process.exit(code);
  }
  lastSignalAt = now;
  deferred ??= sig;
  if (!top) return;
  const hint =
    force && !forceHinted
      ? ` (${force.why}: a second ${sig} within ${FORCE_WINDOW_MS / 1000} s stops now, and may lose it)`
      : "";
  if (hint) forceHinted = true;
  if (announced) {
    if (hint) sayTo(top, `sealkeeper: still ${top.doing}${hint}`);
    return;
  }
  announced = true;
  sayTo(
    top,
    `sealkeeper: ${sig} received while ${top.doing}; stopping now would lose ${top.wouldLose}, so this step ` +
      `finishes and everything is written first; then sealkeeper exits with code ${SIGNAL_EXIT_CODES[sig]}${hint}`,
  );
}

/** Enters a critical section. Returns the function that leaves it (idempotent). */
export function enterCriticalSection(spec: CriticalSectionSpec): () => void {
  const entry: Active = { ...spec };
  stack.push(entry);
  if (stack.length === 1) {
    for (const sig of DEFERRABLE_SIGNALS) {
      const h = () => onSignal(sig);
      handlers.set(sig, h);
      process.on(sig, h);
    }
  }
  let left = false;
  return () => {
    if (left) return;
    left = true;
    const i = stack.lastIndexOf(entry);
    if (i >= 0) stack.splice(i, 1);
    if (stack.length === 0) {
      for (const [sig, h] of handlers) process.removeListener(sig, h);
      handlers.clear();
    }
  };
}

/** Runs `fn` inside a critical section (left also when `fn` throws). */
export async function withCriticalSection<T>(spec: CriticalSectionSpec, fn: () => Promise<T>): Promise<T> {
  const leave = enterCriticalSection(spec);
  try {
    return await fn();
  } finally {
    leave();
  }
}

/** The first signal deferred by a critical section of this run, if any. */
export function deferredSignal(): DeferrableSignal | undefined {
  return deferred;
}

export function insideCriticalSection(): boolean {
  return stack.length > 0;
}

/** The exit code a run must end with after deferring a signal (undefined when none was deferred). */
export function deferredExitCode(): number | undefined {
  return deferred ? SIGNAL_EXIT_CODES[deferred] : undefined;
}

/** Test seam for in-process runs: forget a deferred signal (a real CLI run is one process and never needs this). */
export function resetDeferredSignal(): void {
  deferred = undefined;
  announced = false;
  forceHinted = false;
  lastSignalAt = undefined;
}
