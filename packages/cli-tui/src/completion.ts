/**
 * Shell completion scripts for bash, zsh and fish, made from the command table: commands,
 * `campaign` sub-commands, and each command's options.
 *
 * @since 0.1.0
 */
import { COMMANDS } from "./commands.ts"
import { GLOBAL_OPTIONS } from "./main.ts"

const TOP = [...new Set(COMMANDS.map((c) => c.name.split(" ")[0]!)), "help"]
const CAMPAIGN = COMMANDS.filter((c) => c.name.startsWith("campaign ")).map((c) => c.name.slice(9))
const flags = (name: string) =>
  [...Object.keys(GLOBAL_OPTIONS), ...Object.keys(COMMANDS.find((c) => c.name === name)?.options ?? {})].map(
    (o) => `--${o}`
  )

const bash = () => `# t-minus completion for bash: source <(t-minus completion bash)
_t_minus() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" cmd="\${COMP_WORDS[1]}" sub="\${COMP_WORDS[2]}"
  if [ "$COMP_CWORD" -eq 1 ]; then COMPREPLY=($(compgen -W "${TOP.join(" ")}" -- "$cur")); return; fi
  if [ "$cmd" = campaign ] && [ "$COMP_CWORD" -eq 2 ]; then COMPREPLY=($(compgen -W "${CAMPAIGN.join(" ")}" -- "$cur")); return; fi
  case "$cmd $sub" in
${COMMANDS.filter((c) => c.name.includes(" "))
  .map((c) => `    "${c.name}") COMPREPLY=($(compgen -W "${flags(c.name).join(" ")}" -- "$cur")); return ;;`)
  .join("\n")}
  esac
  case "$cmd" in
${COMMANDS.filter((c) => !c.name.includes(" "))
  .map((c) => `    ${c.name}) COMPREPLY=($(compgen -W "${flags(c.name).join(" ")}" -- "$cur")) ;;`)
  .join("\n")}
  esac
}
complete -F _t_minus t-minus
`

const zsh = () => `#compdef t-minus
# t-minus completion for zsh: t-minus completion zsh > "\${fpath[1]}/_t-minus"
_t_minus() {
  local -a commands subs opts
  commands=(${TOP.join(" ")})
  subs=(${CAMPAIGN.join(" ")})
  if (( CURRENT == 2 )); then compadd -a commands; return; fi
  if [[ $words[2] == campaign ]] && (( CURRENT == 3 )); then compadd -a subs; return; fi
  case "$words[2] $words[3]" in
${COMMANDS.filter((c) => c.name.includes(" "))
  .map((c) => `    "${c.name}") opts=(${flags(c.name).join(" ")}); compadd -a opts; return ;;`)
  .join("\n")}
  esac
  case "$words[2]" in
${COMMANDS.filter((c) => !c.name.includes(" "))
  .map((c) => `    ${c.name}) opts=(${flags(c.name).join(" ")}); compadd -a opts ;;`)
  .join("\n")}
  esac
}
compdef _t_minus t-minus
`

const fish = () =>
  [
    "# t-minus completion for fish: t-minus completion fish > ~/.config/fish/completions/t-minus.fish",
    "complete -c t-minus -f",
    ...COMMANDS.filter((c) => !c.name.includes(" ")).map(
      (c) => `complete -c t-minus -n __fish_use_subcommand -a ${c.name} -d ${JSON.stringify(c.summary)}`
    ),
    `complete -c t-minus -n __fish_use_subcommand -a campaign -d "campaigns: ${CAMPAIGN.join(", ")}"`,
    ...COMMANDS.filter((c) => c.name.startsWith("campaign ")).map(
      (c) =>
        `complete -c t-minus -n "__fish_seen_subcommand_from campaign; and not __fish_seen_subcommand_from ${CAMPAIGN.join(" ")}" -a ${c.name.slice(9)} -d ${JSON.stringify(c.summary)}`
    ),
    ...COMMANDS.flatMap((c) =>
      flags(c.name).map(
        (flag) =>
          `complete -c t-minus -n "__fish_seen_subcommand_from ${c.name.split(" ").pop()}" -l ${flag.slice(2)}`
      )
    ),
    ""
  ].join("\n")

/** The script for `shell`, or `undefined` for a shell it does not know. @since 0.1.0 */
export const completion = (shell: string): string | undefined =>
  shell === "bash" ? bash() : shell === "zsh" ? zsh() : shell === "fish" ? fish() : undefined
