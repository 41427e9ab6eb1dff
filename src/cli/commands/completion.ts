import { Argument, type Command } from "commander";
import type { CliIO } from "../io.js";

const SHELLS = ["bash", "zsh"] as const;

/**
 * `sealkeeper completion bash|zsh`: prints a completion script generated from the program tree at run time, so it
 * knows every command and flag of this very build. Register it last: it reads the tree when it runs, but listing it
 * last keeps `--help` in the order the commands matter.
 */
export function registerCompletion(program: Command, io: CliIO): void {
  program
    .command("completion")
    .description("print a shell completion script (bash or zsh) for every command and flag of this build")
    .addArgument(new Argument("<shell>", "bash or zsh").choices(SHELLS))
    .addHelpText(
      "after",
      `
Load it in the current shell:
  bash:  source <(sealkeeper completion bash)
  zsh:   source <(sealkeeper completion zsh)      (after compinit)
Install it for every new shell:
  bash:  sealkeeper completion bash > ~/.local/share/bash-completion/completions/sealkeeper
  zsh:   sealkeeper completion zsh > "\${fpath[1]}/_sealkeeper"   (a directory of $fpath you can write)`,
    )
    .action(async (shell: (typeof SHELLS)[number]) => {
      const { describeCommandTree, renderBashCompletion, renderZshCompletion } = await import("../completion.js");
      const tree = describeCommandTree(program);
      io.stdout.write(shell === "bash" ? renderBashCompletion(tree) : renderZshCompletion(tree));
    });
}
