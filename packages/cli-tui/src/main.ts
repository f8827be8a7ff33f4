/**
 * The `t-minus` command line (SPEC 9): parses the arguments, opens the embedded engine or a
 * server, runs one command and prints its result (a table or detail for people, one JSON document
 * with `--json`). Exit status: 0 success, 1 domain error (`error: <message>` on stderr, or
 * `{ "error": { "tag", "message" } }` with `--json`), 2 usage error.
 *
 * `main` takes its streams and environment as arguments, so tests run it in-process exactly as
 * the bin does.
 *
 * @since 0.1.0
 */
import { parseArgs } from "node:util"
import { TimeGrammar } from "@t-minus/core"
import * as Either from "effect/Either"
import { type Api, type Backend, open, resolveCampaign, resolveEvent } from "./backend.ts"
import { COMMANDS, type Command, type Context, findCommand, type OptionSpec, UsageError } from "./commands.ts"
import { colorFor, paint } from "./format.ts"
import { campaignHelp, commandHelp, mainHelp } from "./help.ts"

/** What a run of the CLI reads and writes. @since 0.1.0 */
export interface Io {
  readonly stdout: { write(text: string): unknown; readonly isTTY?: boolean | undefined }
  readonly stderr: { write(text: string): unknown; readonly isTTY?: boolean | undefined }
  readonly stdin?: NodeJS.ReadStream | undefined
  readonly env: Readonly<Record<string, string | undefined>>
  /** Resolves on Ctrl-C (or when a test says so): ends `run`. Default: SIGINT or SIGTERM. */
  readonly interrupted?: Promise<void> | undefined
}

/** @since 0.1.0 */
export const VERSION = "0.1.0"

/** Options every command takes. */
export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  db: { type: "string", value: "PATH", help: "the SQLite file (env T_MINUS_DB; default ./t-minus.db)" },
  "database-url": {
    type: "string",
    value: "URL",
    help: "PostgreSQL instead of the file, postgres://… (env T_MINUS_DATABASE_URL)"
  },
  "database-schema": {
    type: "string",
    value: "NAME",
    help: "on PostgreSQL, the schema of the tables (env T_MINUS_DATABASE_SCHEMA; default public)"
  },
  server: { type: "string", value: "URL", help: "act on a t-minus-server instead (env T_MINUS_SERVER)" },
  "api-key": { type: "string", value: "KEY", help: "the server's API key (env T_MINUS_API_KEY)" },
  json: { type: "boolean", help: "print one JSON document (errors as JSON on stderr)" },
  now: { type: "string", value: "TIME", help: "act as if at this instant (relative times too)" },
  as: {
    type: "string",
    value: "AGENT",
    help: "who acts: the organizer of new events, the actor of cancel/reschedule (env T_MINUS_AGENT)"
  },
  "no-color": { type: "boolean", help: "no colours (also NO_COLOR=1, or when not a terminal)" },
  help: { type: "boolean", short: "h", help: "help for the command" },
  version: { type: "boolean", short: "V", help: "print the version" }
}

const errorJson = (tag: string, message: string) => `${JSON.stringify({ error: { tag, message } })}\n`

/** The tag and message of a failure, for `error: …` and the JSON error document. */
const describe = (error: unknown): { tag: string; message: string } => {
  if (typeof error === "object" && error !== null) {
    const e = error as { _tag?: unknown; message?: unknown; name?: unknown }
    const tag = typeof e._tag === "string" ? e._tag : typeof e.name === "string" ? e.name : "Error"
    const message = typeof e.message === "string" && e.message !== "" ? e.message : String(error)
    return { tag, message }
  }
  return { tag: "Error", message: String(error) }
}

/** Marks an argument that starts with `-` and a digit as a value, not an option. */
const NEGATIVE_MARK = "\u0000"

/**
 * `-5m`, `-1`: values (a negative duration or number, which validation then refuses with a
 * message naming the field), not options. After an option that takes a value they become
 * `--option=-5m`; elsewhere they are positionals.
 */
const negativesAsValues = (argv: ReadonlyArray<string>): Array<string> => {
  const valued = valuedOptions().names
  const out: Array<string> = []
  for (const arg of argv) {
    if (/^-\d/.test(arg)) {
      const previous = out[out.length - 1]
      if (previous?.startsWith("--") && !previous.includes("=") && valued.has(previous.slice(2))) {
        out[out.length - 1] = `${previous}=${arg}`
      } else out.push(NEGATIVE_MARK + arg)
    } else out.push(arg)
  }
  return out
}

/** Every option that takes a value, across commands (long names, and short letters). */
const valuedOptions = () => {
  const names = new Set<string>()
  const shorts = new Set<string>()
  for (const options of [GLOBAL_OPTIONS, ...COMMANDS.map((c) => c.options)]) {
    for (const [name, spec] of Object.entries(options)) {
      if (spec.type !== "string") continue
      names.add(name)
      if (spec.short !== undefined) shorts.add(spec.short)
    }
  }
  return { names, shorts }
}

/** Splits `argv` into the command's words and everything else (options and their arguments). */
const commandWords = (argv: ReadonlyArray<string>) => {
  // The values of options that take one are not command words.
  const { names: valued, shorts: shortValued } = valuedOptions()
  const words: Array<number> = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === "--") break
    if (arg.startsWith("--")) {
      if (!arg.includes("=") && valued.has(arg.slice(2))) i++
      continue
    }
    if (arg.startsWith("-") && arg.length > 1) {
      if (arg.length === 2 && shortValued.has(arg[1]!)) i++
      continue
    }
    words.push(i)
    if (words.length === 3) break
  }
  return words
}

/**
 * Runs the CLI once; resolves with its exit status.
 *
 * @since 0.1.0
 */
export const main = async (given: ReadonlyArray<string>, io: Io): Promise<number> => {
  const argv = negativesAsValues(given)
  const indices = commandWords(argv)
  const words = indices.map((i) => argv[i]!)
  const found = findCommand(words)
  const jsonWanted = argv.includes("--json")
  const usage = (message: string, command?: Command) => {
    if (jsonWanted) io.stderr.write(errorJson("UsageError", message))
    else {
      io.stderr.write(`error: ${message}\n`)
      io.stderr.write(`Run \`t-minus ${command === undefined ? "" : `${command.name} `}--help\` for usage.\n`)
    }
    return 2
  }
  if (found === undefined) {
    if (argv.includes("--version") || argv.includes("-V")) {
      io.stdout.write(`${VERSION}\n`)
      return 0
    }
    if (words.length === 0 || words[0] === "help") {
      const asked = words.slice(1)
      const topic = findCommand(asked)
      if (asked.length > 0 && topic === undefined && asked[0] !== "campaign") {
        return usage(`no command ${JSON.stringify(asked.join(" "))} to help with`)
      }
      io.stdout.write(
        topic !== undefined
          ? commandHelp(topic.command)
          : asked[0] === "campaign"
            ? campaignHelp()
            : mainHelp()
      )
      return 0
    }
    if (words[0] === "campaign") {
      return usage(
        `campaign takes one of create, add, link, order, show, list${words[1] === undefined ? "" : `; got ${JSON.stringify(words[1])}`}`
      )
    }
    return usage(`unknown command ${JSON.stringify(words[0])}`)
  }
  const command = found.command
  const rest = argv.filter((_, i) => !indices.slice(0, found.words).includes(i))
  let parsed: ReturnType<typeof parseArgs>
  try {
    parsed = parseArgs({
      args: [...rest],
      options: toParseArgs({ ...GLOBAL_OPTIONS, ...command.options }),
      allowPositionals: true,
      strict: true
    })
  } catch (error) {
    return usage((error as Error).message.replace(/\. To specify a positional argument.*$/s, ""), command)
  }
  const values = parsed.values as Record<string, string | boolean | Array<string> | undefined>
  if (values.help === true) {
    io.stdout.write(commandHelp(command))
    return 0
  }
  const positionals = parsed.positionals.map((p) => (p.startsWith(NEGATIVE_MARK) ? p.slice(1) : p))
  if (positionals.length < command.minArgs || positionals.length > command.maxArgs) {
    return usage(
      `${command.name} takes ${command.usage === "" ? "no arguments" : command.usage}; got ${positionals.length === 0 ? "none" : positionals.map((p) => JSON.stringify(p)).join(" ")}`,
      command
    )
  }

  const env = io.env
  const json = values.json === true
  const out = paint(colorFor(env, io.stdout.isTTY, values["no-color"] === true))
  const err = paint(colorFor(env, io.stderr.isTTY, values["no-color"] === true))
  const string = (name: string) => (typeof values[name] === "string" ? (values[name] as string) : undefined)
  const server = string("server") ?? nonEmpty(env.T_MINUS_SERVER)
  if (string("db") === "")
    return usage("--db needs a file name (an empty one would be a throwaway database)", command)
  const databaseUrl =
    string("database-url") ?? (string("db") === undefined ? nonEmpty(env.T_MINUS_DATABASE_URL) : undefined)
  if (databaseUrl !== undefined && string("db") !== undefined)
    return usage("give --db (SQLite) or --database-url (Postgres), not both", command)
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl))
    return usage("--database-url: expected postgres://user@host:port/database", command)
  const databaseSchema = string("database-schema") ?? nonEmpty(env.T_MINUS_DATABASE_SCHEMA)
  if (databaseSchema !== undefined && !/^[a-z_][a-z0-9_]{0,47}$/.test(databaseSchema))
    return usage("--database-schema: lower-case letters, digits and _, at most 48 characters", command)
  const db = string("db") ?? nonEmpty(env.T_MINUS_DB) ?? "./t-minus.db"
  const agent = string("as") ?? nonEmpty(env.T_MINUS_AGENT)
  const nowText = string("now")
  let backend: Backend | undefined
  try {
    let fixedNow: number | undefined
    if (nowText !== undefined) {
      fixedNow = Either.getOrThrowWith(
        TimeGrammar.parseTime(nowText, Date.now(), { field: "now", bareNumber: "s" }),
        (error) => error
      )
    }
    const now = () => fixedNow ?? Date.now()
    const ctx: Context = {
      positionals,
      values,
      string,
      json,
      out,
      io,
      agent,
      now,
      fixedNow,
      server,
      open: async (options = {}) => {
        backend = await open({
          db,
          databaseUrl,
          databaseSchema,
          server,
          apiKey: string("api-key") ?? nonEmpty(env.T_MINUS_API_KEY),
          now: options.runner === true ? undefined : fixedNow,
          runner: options.runner
        })
        return backend
      },
      event: (api: Api, text: string) => resolveEvent(api, text),
      campaign: (api: Api, text: string) => resolveCampaign(api, text)
    }
    const result = await command.run(ctx)
    if (result !== undefined) {
      if (json) io.stdout.write(`${JSON.stringify(result.json, null, 2)}\n`)
      else if (result.human !== "") io.stdout.write(`${result.human}\n`)
    }
    return 0
  } catch (error) {
    if (error instanceof UsageError) return usage(error.message, command)
    const { tag, message } = describe(error)
    if (json) io.stderr.write(errorJson(tag, message))
    else io.stderr.write(`${err.red("error:")} ${message}\n`)
    return 1
  } finally {
    await backend?.api.close().catch(() => undefined)
  }
}

const nonEmpty = (text: string | undefined) => (text === undefined || text === "" ? undefined : text)

const toParseArgs = (options: Record<string, OptionSpec>) =>
  Object.fromEntries(
    Object.entries(options).map(([name, spec]) => [
      name,
      {
        type: spec.type,
        ...(spec.short === undefined ? {} : { short: spec.short }),
        ...(spec.multiple === true ? { multiple: true } : {})
      }
    ])
  ) as NonNullable<Parameters<typeof parseArgs>[0]>["options"]
