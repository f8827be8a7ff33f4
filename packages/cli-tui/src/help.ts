/**
 * Help text, made from the command table: `t-minus --help` and `t-minus <command> --help`.
 *
 * @since 0.1.0
 */
import { COMMANDS, type Command, type OptionSpec } from "./commands.ts"
import { GLOBAL_OPTIONS } from "./main.ts"

const optionLines = (options: Record<string, OptionSpec>) => {
  const rows = Object.entries(options).map(([name, spec]) => {
    const flag = `${spec.short === undefined ? "    " : `-${spec.short}, `}--${name}${spec.value === undefined ? "" : ` ${spec.value}`}`
    return [flag, spec.help] as const
  })
  const width = Math.max(...rows.map(([flag]) => flag.length))
  return rows.map(([flag, help]) => `  ${flag.padEnd(width)}  ${help}`).join("\n")
}

/** @since 0.1.0 */
export const mainHelp = (): string => {
  const width = Math.max(...COMMANDS.map((c) => `${c.name} ${c.usage}`.trim().length))
  return `t-minus — countdown coordination for teams of agents

Usage:
  t-minus [--db PATH | --server URL [--api-key KEY]] [--json] [--now TIME] <command> [args]

Commands:
${COMMANDS.map((c) => `  ${`${c.name} ${c.usage}`.trim().padEnd(width)}  ${c.summary}`).join("\n")}

Options for every command:
${optionLines(GLOBAL_OPTIONS)}

Modes: embedded (the default) acts on a SQLite file: --db, else T_MINUS_DB, else ./t-minus.db.
Remote acts on a t-minus-server: --server URL (or T_MINUS_SERVER) with --api-key (or T_MINUS_API_KEY).
Both behave and print the same. Remote, --now sets what relative times and countdowns count from
(and tick's instant); the server's clock decides the rest.

Times: +5m, +1h30m, RFC 3339 (2026-12-24T09:00:00Z, any offset), or a bare duration from now (5m, or
90 for seconds). Durations: 500ms 30s 5m 2h 1d 1w 1h30m PT1H30M, or a bare number of seconds.
Ids: tables show an id's last 8 characters; any unique start or end of an id (4 or more) works.

Exit status: 0 success, 1 an error from t-minus (error: … on stderr), 2 a usage error.
\`t-minus <command> --help\` shows a command's options and examples.
`
}

/** @since 0.1.0 */
export const commandHelp = (command: Command): string => {
  const options =
    Object.keys(command.options).length === 0 ? "" : `\nOptions:\n${optionLines(command.options)}\n`
  return `t-minus ${command.name} — ${command.summary}

Usage:
  t-minus ${command.name}${command.usage === "" ? "" : ` ${command.usage}`} [options]
${command.notes === undefined ? "" : `\n${command.notes}\n`}${options}
Examples:
${command.examples.map((e) => `  ${e}`).join("\n")}

Every command also takes --db, --server, --api-key, --json, --now, --as, --no-color (t-minus --help).
`
}

/** `t-minus help campaign`: the campaign commands. @since 0.1.0 */
export const campaignHelp = (): string => {
  const campaign = COMMANDS.filter((c) => c.name.startsWith("campaign "))
  const width = Math.max(...campaign.map((c) => `${c.name} ${c.usage}`.length))
  return `t-minus campaign — events chained by dependencies

${campaign.map((c) => `  t-minus ${`${c.name} ${c.usage}`.padEnd(width)}  ${c.summary}`).join("\n")}

\`t-minus campaign <command> --help\` shows a command's options and examples.
`
}
