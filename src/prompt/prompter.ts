/**
 * The Prompter seam: how a ceremony asks a person for something. The TTY implementation uses @inquirer/prompts
 * (loaded lazily); the scripted one refuses to prompt, so that `--non-interactive` and CI never hang on a question.
 */
import { PassThrough, type Readable, type Writable } from "node:stream";
import { UsageError } from "../errors.js";
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

/** A prompter for a terminal, over the given streams (the process's own, or a test's). */
export function ttyPrompter(streams: { input: Readable; output: Writable }): Prompter {
  // Inquirer ends its output stream when a prompt is done; give each prompt its own pipe into ours (end: false),
  // so that the next prompt can still write (a terminal ignores end(), an injected stream does not).
  const context = () => {
    const output = new PassThrough();
    output.pipe(streams.output, { end: false });
    return { input: streams.input, output, clearPromptOnDone: false };
  };
  const prompts = () => import("@inquirer/prompts");
  return {
    async secret(message) {
      const { password } = await prompts();
      return password({ message, mask: "*" }, context());
    },
    async input(message, opts) {
      const { input } = await prompts();
      // A plain prompt never takes a secret: anything share-, token- or key-shaped is masked as it is typed, blanked
      // on the prompt's final line, refused with a message, and asked again (src/util/redact.ts: looksSecret).
      for (;;) {
        const answer = await input(
          {
            message,
            ...(opts?.default ? { default: opts.default } : {}),
            transformer: (value, { isFinal }) =>
              looksSecret(value) ? (isFinal ? "" : "*".repeat(value.length)) : value,
          },
          context(),
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
      return select({ message, choices }, context());
    },
    async confirm(message, defaultValue = false) {
      const { confirm } = await prompts();
      return confirm({ message, default: defaultValue }, context());
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
