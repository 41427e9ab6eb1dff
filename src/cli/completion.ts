/**
 * Shell completion scripts generated from the commander program tree at run time, so they can never drift from the
 * real CLI: every command, subcommand and flag the program declares (hidden ones excepted) is in the script, and
 * nothing else. The tree is read through commander's public Help API (visibleCommands, visibleOptions), which also
 * yields the implicit `help` command and the `-h, --help` option.
 */
import type { Argument, Command, Option } from "commander";

/** What a flag's or argument's value is, for completion: a file, a directory, one of fixed choices, or free text. */
export type CompletionValue =
  | { kind: "file" }
  | { kind: "dir" }
  | { kind: "choice"; choices: string[] }
  | { kind: "word"; placeholder: string };

export interface CompletionFlag {
  /** Every spelling of the flag, e.g. ["-a", "--address"]. */
  names: string[];
  /** null for a boolean flag (it takes no value). */
  value: CompletionValue | null;
  description: string;
}

export interface CompletionNode {
  /** The words after the program name that select this command; [] for the program itself. */
  path: string[];
  name: string;
  description: string;
  flags: CompletionFlag[];
  subcommands: CompletionNode[];
  /** What the positional arguments are; null when the command takes none. */
  args: CompletionValue | null;
}

/** Reads the program tree as completion sees it. Never throws for a well-formed commander program. */
export function describeCommandTree(program: Command): CompletionNode {
  return describeNode(program, []);
}

function describeNode(cmd: Command, path: string[]): CompletionNode {
  const help = cmd.createHelp();
  const commands = help.visibleCommands(cmd);
  const siblings = commands.map((c) => c.name()).filter((n) => n !== "help");
  const subcommands = commands.map((sub) => {
    const node = describeNode(sub, [...path, sub.name()]);
    // The implicit `help [command]` takes the name of a sibling command: complete those.
    if (sub.name() === "help" && node.args !== null) node.args = { kind: "choice", choices: siblings };
    return node;
  });
  return {
    path,
    name: cmd.name(),
    description: oneLine(cmd.description()),
    flags: help.visibleOptions(cmd).map(describeFlag),
    subcommands,
    // registeredArguments, not visibleArguments: the latter is empty when no argument has a description
    args: describeArguments(cmd.registeredArguments),
  };
}

function describeFlag(option: Option): CompletionFlag {
  const names = [option.short, option.long].filter((n): n is string => typeof n === "string");
  const takesValue = option.required || option.optional;
  return {
    names,
    value: takesValue ? describeValue(option.argChoices, placeholderOf(option.flags)) : null,
    description: oneLine(option.description),
  };
}

function describeArguments(args: readonly Argument[]): CompletionValue | null {
  const first = args[0];
  if (first === undefined) return null;
  return describeValue(first.argChoices, first.name());
}

/** The value's kind comes from declared choices, else from the placeholder's name (`<file>`, `<dir>`, `<files...>`). */
function describeValue(choices: readonly string[] | undefined, placeholder: string): CompletionValue {
  if (choices && choices.length > 0) return { kind: "choice", choices: [...choices] };
  if (/file/i.test(placeholder)) return { kind: "file" };
  if (/dir/i.test(placeholder)) return { kind: "dir" };
  return { kind: "word", placeholder };
}

function placeholderOf(flags: string): string {
  const match = /[<[]([^>\]]+)[>\]]/.exec(flags);
  return (match?.[1] ?? "value").replace(/\.\.\.$/, "");
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > 100 ? `${flat.slice(0, 97)}...` : flat;
}

function walk(node: CompletionNode): CompletionNode[] {
  return [node, ...node.subcommands.flatMap(walk)];
}

/** Quotes a string for a POSIX shell (bash and zsh alike): single quotes, with embedded ones closed and escaped. */
function quote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** A shell identifier for the program's functions: the name with anything outside [A-Za-z0-9_] replaced. */
function functionName(program: string): string {
  return `_${program.replace(/[^A-Za-z0-9_]/g, "_")}`;
}

/** `case` arms mapping each value-taking flag of each command to its value kind, shared by both shells. */
function renderValueKinds(nodes: CompletionNode[], printer: string): string {
  const arms: string[] = [];
  for (const node of nodes) {
    const inner = node.flags
      .filter((f) => f.value !== null)
      .map((f) => `      ${f.names.map(quote).join("|")}) ${printer} ${quote(encodeValue(f.value!))} ;;`);
    if (inner.length === 0) continue;
    arms.push(`    ${quote(node.path.join(" "))})\n      case "$2" in\n${inner.join("\n")}\n      esac ;;`);
  }
  return arms.join("\n");
}

/** One word per value kind, read back by the scripts: file, dir, choice:a b c, word:placeholder. */
function encodeValue(value: CompletionValue): string {
  if (value.kind === "choice") return `choice:${value.choices.join(" ")}`;
  if (value.kind === "word") return `word:${value.placeholder}`;
  return value.kind;
}

/**
 * The bash script: `source <(sealkeeper completion bash)`. Walks COMP_WORDS to find the command being typed (a flag
 * that takes a value skips the next word), then completes a flag's value (files, directories, choices; nothing for
 * free text such as a URL), a flag (after `-`), a subcommand, or the command's positional argument.
 */
export function renderBashCompletion(tree: CompletionNode): string {
  const fn = functionName(tree.name);
  const nodes = walk(tree);
  const nodeArms = nodes
    .map((n) => {
      const subs = n.subcommands.map((s) => s.name).join(" ");
      const flags = n.flags.flatMap((f) => f.names).join(" ");
      const args = n.args === null ? "" : encodeValue(n.args);
      return `    ${quote(n.path.join(" "))}) subs=${quote(subs)}; flags=${quote(flags)}; args=${quote(args)} ;;`;
    })
    .join("\n");
  return `# bash completion for ${tree.name}, generated from its command tree by \`${tree.name} completion bash\`.
# Load it now:        source <(${tree.name} completion bash)
# Or for every shell: ${tree.name} completion bash > ~/.local/share/bash-completion/completions/${tree.name}

# ${fn}_node PATH: sets subs, flags and args (the value kind of positional arguments) for the command PATH.
${fn}_node() {
  subs=''; flags=''; args=''
  case "$1" in
${nodeArms}
  esac
}

# ${fn}_value PATH FLAG: prints the value kind of FLAG on command PATH; nothing for a flag that takes no value.
${fn}_value() {
  case "$1" in
${renderValueKinds(nodes, "echo")}
  esac
}

# ${fn}_complete_value KIND: fills COMPREPLY for a value of KIND.
${fn}_complete_value() {
  local IFS=$'\\n'
  case "$1" in
    file) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")) ;;
    dir) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")) ;;
    choice:*) local words="\${1#choice:}"; COMPREPLY=($(compgen -W "\${words// /$'\\n'}" -- "$cur")) ;;
    *) COMPREPLY=() ;;
  esac
}

${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" cmdpath='' word kind subs flags args i=1
  COMPREPLY=()
  while [[ $i -lt $COMP_CWORD ]]; do
    word="\${COMP_WORDS[i]}"
    case "$word" in
      --*=*) ;;
      -*)
        kind="$(${fn}_value "$cmdpath" "$word")"
        # the flag's value is the next word, unless that is the word being completed
        if [[ -n "$kind" ]]; then i=$((i + 1)); fi ;;
      *)
        ${fn}_node "$cmdpath"
        if [[ " $subs " == *" $word "* ]]; then cmdpath="\${cmdpath:+$cmdpath }$word"; fi ;;
    esac
    i=$((i + 1))
  done
  ${fn}_node "$cmdpath"

  local prev=''
  if [[ $COMP_CWORD -gt 0 ]]; then prev="\${COMP_WORDS[COMP_CWORD-1]}"; fi
  # --flag=value: bash splits at '=' (COMP_WORDBREAKS), so the flag is two words back
  if [[ "$prev" == "=" && $COMP_CWORD -gt 1 ]]; then prev="\${COMP_WORDS[COMP_CWORD-2]}"; fi
  if [[ "$prev" == -* ]]; then
    kind="$(${fn}_value "$cmdpath" "$prev")"
    if [[ -n "$kind" ]]; then ${fn}_complete_value "$kind"; return 0; fi
  fi
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  elif [[ -n "$subs" ]]; then
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
  elif [[ -n "$args" ]]; then
    ${fn}_complete_value "$args"
  else
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  fi
  return 0
}

complete -F ${fn} ${tree.name}
`;
}

/**
 * The zsh script: `source <(sealkeeper completion zsh)` after compinit, or saved as `_sealkeeper` in a directory of
 * $fpath. Same walk as bash over `words`/`CURRENT`; subcommands and flags are offered with their descriptions.
 */
export function renderZshCompletion(tree: CompletionNode): string {
  const fn = functionName(tree.name);
  const nodes = walk(tree);
  const nodeArms = nodes
    .map((n) => {
      const subs = n.subcommands.map((s) => quote(`${s.name}:${s.description}`)).join(" ");
      const flags = n.flags.flatMap((f) => f.names.map((name) => quote(`${name}:${f.description}`))).join(" ");
      const args = n.args === null ? "" : encodeValue(n.args);
      return `    ${quote(n.path.join(" "))}) subs=(${subs}); flags=(${flags}); args=${quote(args)} ;;`;
    })
    .join("\n");
  return `#compdef ${tree.name}
# zsh completion for ${tree.name}, generated from its command tree by \`${tree.name} completion zsh\`.
# Load it now (after compinit):  source <(${tree.name} completion zsh)
# Or for every shell:            ${tree.name} completion zsh > "\${fpath[1]}/_${tree.name}"

# ${fn}_node PATH: sets subs and flags ("name:description" entries) and args for the command PATH.
${fn}_node() {
  subs=(); flags=(); args=''
  case "$1" in
${nodeArms}
  esac
}

# ${fn}_value PATH FLAG: prints the value kind of FLAG on command PATH; nothing for a flag that takes no value.
${fn}_value() {
  case "$1" in
${renderValueKinds(nodes, "print -r --")}
  esac
}

# ${fn}_complete_value KIND
${fn}_complete_value() {
  case "$1" in
    file) _files ;;
    dir) _files -/ ;;
    choice:*) compadd -- \${=1#choice:} ;;
    word:*) _message "\${1#word:}" ;;
  esac
}

${fn}() {
  local cmdpath='' word kind args prev
  local -a subs flags
  local -i i=2
  while (( i < CURRENT )); do
    word="\${words[i]}"
    case "$word" in
      --*=*) ;;
      -*)
        kind="$(${fn}_value "$cmdpath" "$word")"
        if [[ -n "$kind" ]]; then (( i++ )); fi ;;
      *)
        ${fn}_node "$cmdpath"
        if (( \${subs[(I)\${word}:*]} )); then cmdpath="\${cmdpath:+$cmdpath }$word"; fi ;;
    esac
    (( i++ ))
  done
  ${fn}_node "$cmdpath"

  prev="\${words[CURRENT-1]}"
  if [[ "$prev" == -* && CURRENT -gt 2 ]]; then
    kind="$(${fn}_value "$cmdpath" "$prev")"
    if [[ -n "$kind" ]]; then ${fn}_complete_value "$kind"; return; fi
  fi
  if [[ "\${words[CURRENT]}" == -* ]]; then
    _describe -t options 'option' flags
  elif (( \${#subs} )); then
    _describe -t commands 'command' subs
  elif [[ -n "$args" ]]; then
    ${fn}_complete_value "$args"
  else
    _describe -t options 'option' flags
  fi
}

if [[ "\${funcstack[1]}" == "${fn}" ]]; then
  ${fn} "$@"
elif (( \${+functions[compdef]} )); then
  compdef ${fn} ${tree.name}
fi
`;
}
