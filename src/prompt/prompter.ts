/**
 * The Prompter seam: how a ceremony asks a person for something. The TTY implementation uses @inquirer/prompts
 * (loaded lazily); the scripted one refuses to prompt, so that `--non-interactive` and CI never hang on a question.
 */
import { PassThrough, type Readable, type Writable } from "node:stream";
import { SealkeeperError, UsageError } from "../errors.js";
import { looksSecret } from "../util/redact.js";

export interface Choice<T> {
  name: string;
  value: T;
  description?: string;
}

export interface Prompter {
  /** Asks for a secret; the answer is masked on screen and never echoed. */
  secret(message: string): Promise<string>;
  /** Asks for a plain value (a path, a name). Refuses (and asks again for) anything shaped like a secret. */
  input(message: string, opts?: { default?: string }): Promise<string>;
  select<T>(message: string, choices: Choice<T>[]): Promise<T>;
  confirm(message: string, defaultValue?: boolean): Promise<boolean>;
  /** Prints a line for the person (progress, who has contributed). */
  say(line: string): void;
}

/** How a person ended a prompt without answering it. */
export type Interruption = "SIGINT" | "SIGTERM" | "SIGHUP" | "EOF";

/** The exit code of a run ended at a prompt: the shell's 128 + signal (Ctrl-C and Ctrl-D both 130: the person stopped). */
export const INTERRUPT_EXIT_CODES: Record<Interruption, number> = { SIGINT: 130, EOF: 130, SIGTERM: 143, SIGHUP: 129 };

const SAID: Record<Interruption, string> = {
  SIGINT: "Ctrl-C (SIGINT)",
  EOF: "Ctrl-D (end of input)",
  SIGTERM: "SIGTERM",
  SIGHUP: "SIGHUP (the terminal went away)",
};

/**
 * A prompt ended by Ctrl-C, Ctrl-D or a signal: the person (or the system) stopped the run there. Ceremonies catch it
 * where they ask for a share (the quorum engine: it ends the share source, as "stop here" does) and say what the
 * server holds and how to go on; anywhere else it ends the run with `exitCode` (130, 143 or 129).
 */
export class PromptInterrupted extends SealkeeperError {
  readonly how: Interruption;
  constructor(how: Interruption, question: string) {
    super(`interrupted by ${SAID[how]} at the prompt "${question}"`, { exitCode: INTERRUPT_EXIT_CODES[how] });
    this.how = how;
  }
  /** "Ctrl-C (SIGINT)", ...: for the line that says what the interruption left. */
  get said(): string {
    return SAID[this.how];
  }
}

/**
 * Runs one inquirer prompt so that every way of ending it without an answer is a PromptInterrupted: Ctrl-C (the
 * prompt's own ExitPromptError), Ctrl-D on an empty line (readline closes and the prompt would never settle: it is
 * aborted), the end of a piped input, and SIGINT/SIGTERM/SIGHUP sent to the process (handled while the prompt is open,
 * so the run can say what it leaves behind instead of dying mid-sentence).
 */
async function interruptible<T>(
  question: string,
  input: Readable,
  run: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const abort = new AbortController();
  const stop = (how: Interruption) => {
    if (!abort.signal.aborted) abort.abort(how);
  };
  const onSignal = new Map<Interruption, () => void>();
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    onSignal.set(sig, () => stop(sig));
    process.on(sig, onSignal.get(sig)!);
  }
  // Ctrl-D on an empty line closes readline, which pauses the input: the prompt would wait forever
  const onKey = (_: unknown, key?: { ctrl?: boolean; name?: string }) => {
    if (key?.ctrl && key.name === "d") setImmediate(() => input.isPaused() && stop("EOF"));
  };
  const onEnd = () => stop("EOF");
  input.on("keypress", onKey);
  input.on("end", onEnd);
  try {
    return await run(abort.signal);
  } catch (err) {
    const name = (err as Error)?.name;
    if (abort.signal.aborted) throw new PromptInterrupted(abort.signal.reason as Interruption, question);
    if (name === "ExitPromptError") {
      const how = /SIGTERM/.test((err as Error).message)
        ? "SIGTERM"
        : /SIGHUP/.test((err as Error).message)
          ? "SIGHUP"
          : /SIGINT/.test((err as Error).message)
            ? "SIGINT"
            : "EOF";
      throw new PromptInterrupted(how, question);
    }
    throw err;
  } finally {
    for (const [sig, h] of onSignal) process.removeListener(sig, h);
    input.removeListener("keypress", onKey);
    input.removeListener("end", onEnd);
  }
}

/** A prompter for a terminal, over the given streams (the process's own, or a test's). */
export function ttyPrompter(streams: { input: Readable; output: Writable }): Prompter {
  // Inquirer ends its output stream when a prompt is done; give each prompt its own pipe into ours (end: false),
  // so that the next prompt can still write (a terminal ignores end(), an injected stream does not).
  const context = (signal: AbortSignal) => {
    const output = new PassThrough();
    output.pipe(streams.output, { end: false });
    return { input: streams.input, output, clearPromptOnDone: false, signal };
  };
  const ask = <T>(question: string, run: (signal: AbortSignal) => Promise<T>) =>
    interruptible(question, streams.input, run);
  const prompts = () => import("@inquirer/prompts");
  return {
    async secret(message) {
      const { password } = await prompts();
      return ask(message, (signal) => password({ message, mask: "*" }, context(signal)));
    },
    async input(message, opts) {
      const { input } = await prompts();
      // A plain prompt never takes a secret: anything share-, token- or key-shaped is masked as it is typed, blanked
      // on the prompt's final line, refused with a message, and asked again (src/util/redact.ts: looksSecret).
      for (;;) {
        const answer = await ask(message, (signal) =>
          input(
            {
              message,
              ...(opts?.default ? { default: opts.default } : {}),
              transformer: (value, { isFinal }) =>
                looksSecret(value) ? (isFinal ? "" : "*".repeat(value.length)) : value,
            },
            context(signal),
          ),
        );
        if (!looksSecret(answer)) return answer;
        streams.output.write(
          `✗ that looked like a share, a token or a key, typed at "${message}": it was not recorded and is not shown; ` +
            "secrets go only to the hidden Share: or passphrase prompts. Answer again.\n",
        );
      }
    },
    async select(message, choices) {
      const { select } = await prompts();
      return ask(message, (signal) => select({ message, choices }, context(signal)));
    },
    async confirm(message, defaultValue = false) {
      const { confirm } = await prompts();
      return ask(message, (signal) => confirm({ message, default: defaultValue }, context(signal)));
    },
    say(line) {
      streams.output.write(`${line}\n`);
    },
  };
}

/** The prompter of --non-interactive runs: every question is an error naming what was missing. */
export function refusingPrompter(say: (line: string) => void = () => {}): Prompter {
  const refuse = (what: string): never => {
    throw new UsageError(`${what} is needed but --non-interactive forbids prompting (give it by flag, file or stdin)`);
  };
  return {
    secret: async (m) => refuse(`an answer to "${m}"`),
    input: async (m) => refuse(`an answer to "${m}"`),
    select: async (m) => refuse(`an answer to "${m}"`),
    confirm: async (m) => refuse(`a confirmation of "${m}"`),
    say,
  };
}
