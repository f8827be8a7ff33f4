/**
 * One attempt at delivering one action (SPEC 5): a signed webhook, an allow-listed command, a file
 * written under a sandbox directory, or a log line. The delivery loop owns retries and history;
 * this module only runs an attempt and says how it went, and whether trying again can help.
 *
 * Runtime-agnostic: HTTP, processes, files and paths come from @effect/platform services, HMAC
 * from WebCrypto, and time from Effect's `Clock`.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/platform/Command"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Path from "@effect/platform/Path"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { InvalidInput } from "./Errors.ts"
import type { Action, ActionTransition } from "./Event.ts"
import { DEFAULT_TENANT, Event } from "./Event.ts"

/**
 * What an allow-listed command name runs: a program and its fixed leading arguments. The action's
 * own (templated) arguments are appended after `args`.
 *
 * @since 0.1.0
 */
export interface CommandSpec {
  readonly command: string
  readonly args?: ReadonlyArray<string>
  readonly timeoutMs?: number
  readonly cwd?: string
  readonly env?: Record<string, string>
}

/**
 * What the runner allows, configured where it runs (never received over the network).
 *
 * @since 0.1.0
 */
export interface ActionsConfig {
  /** The allow-list: action name → what runs. */
  readonly commands?: Readonly<Record<string, CommandSpec>>
  /** Root of the `file_write` sandbox; without it every `file_write` fails permanently. */
  readonly fileDirectory?: string
  /** Default 10 000. */
  readonly webhookTimeoutMs?: number
  /** Default 60 000; a command's own `timeoutMs` wins. */
  readonly commandTimeoutMs?: number
  /** How much of a command's combined stdout and stderr is kept; default 4096 bytes. */
  readonly outputTailBytes?: number
}

/** @since 0.1.0 */
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000
/** @since 0.1.0 */
export const DEFAULT_COMMAND_TIMEOUT_MS = 60_000
/** @since 0.1.0 */
export const DEFAULT_OUTPUT_TAIL_BYTES = 4096

/**
 * What an attempt knows about why it runs. Everything but `attempt` is the same on every attempt,
 * so what a receiver sees (body, signature input, file content) does not drift between retries.
 *
 * @since 0.1.0
 */
export interface ActionContext {
  /** Idempotency key `<eventId>:<transition>:<index>`. */
  readonly key: string
  readonly transition: ActionTransition
  /** The event as of the transition. */
  readonly event: Event
  /** The transition's instant. */
  readonly occurredAt: Date
  /** 1-based. */
  readonly attempt: number
}

/**
 * How one attempt went. `retry: false` means another attempt cannot help (HTTP 410, a command not
 * on the allow-list, a path escaping the sandbox, a bad template, no configured directory).
 *
 * @since 0.1.0
 */
export type AttemptOutcome =
  | {
      readonly _tag: "Delivered"
      readonly durationMs: number
      readonly statusCode?: number
      readonly exitCode?: number
      readonly outputTail?: string
      /** For `file_write`: the path written, relative to the directory. */
      readonly path?: string
    }
  | {
      readonly _tag: "Failed"
      readonly retry: boolean
      readonly error: string
      readonly durationMs: number
      readonly statusCode?: number
      readonly exitCode?: number
      readonly outputTail?: string
    }

/** An attempt that did not deliver; turned into a `Failed` outcome at the edge of `deliver`. */
class AttemptFailure extends Data.TaggedError("AttemptFailure")<{
  readonly retry: boolean
  readonly error: string
  readonly statusCode?: number
  readonly exitCode?: number
  readonly outputTail?: string
}> {}

type Delivered = Omit<Extract<AttemptOutcome, { _tag: "Delivered" }>, "_tag" | "durationMs">

const permanent = (error: string) => new AttemptFailure({ retry: false, error })
const transient = (error: string) => new AttemptFailure({ retry: true, error })

/** The message of an error and of its causes, which is where fetch puts `ECONNREFUSED`. */
const describe = (error: unknown): string => {
  const parts: Array<string> = []
  let current: unknown = error
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth++) {
    const message =
      current instanceof Error || (typeof current === "object" && "message" in current)
        ? String((current as { message: unknown }).message)
        : String(current)
    if (message !== "" && !parts.some((part) => part.includes(message))) parts.push(message)
    current = typeof current === "object" && "cause" in current ? current.cause : undefined
  }
  return parts.join(": ") || "unknown error"
}

/** The placeholder names `template` knows, besides `payload.<path>`. @since 0.1.0 */
export const PLACEHOLDERS = [
  "id",
  "name",
  "kind",
  "status",
  "organizer",
  "fireAt",
  "firedAt",
  "missedAt",
  "occurredAt",
  "reason",
  "transition",
  "key",
  "payload"
] as const

const PLACEHOLDER = /\$\{([^}]*)\}/g

const iso = (date: Date | null): string => (date === null ? "" : date.toISOString())

const json = (value: unknown): string => (value === undefined ? "" : JSON.stringify(value))

const payloadAt = (payload: unknown, path: ReadonlyArray<string>): string => {
  let value = payload
  for (const segment of path) {
    // Own properties only: `${payload.constructor}` must not reach into prototypes.
    if (typeof value !== "object" || value === null || !Object.hasOwn(value, segment)) return ""
    value = (value as Record<string, unknown>)[segment]
  }
  return typeof value === "string" ? value : json(value)
}

const resolve = (name: string, ctx: ActionContext): Either.Either<string, string> => {
  const event = ctx.event
  switch (name) {
    case "id":
      return Either.right(event.id)
    case "name":
      return Either.right(event.name ?? "")
    case "kind":
      return Either.right(event.kind)
    case "status":
      return Either.right(event.status)
    case "organizer":
      return Either.right(event.organizer)
    case "fireAt":
      return Either.right(iso(event.fireAt))
    case "firedAt":
      return Either.right(iso(event.firedAt))
    case "missedAt":
      return Either.right(iso(event.missedAt))
    case "occurredAt":
      return Either.right(iso(ctx.occurredAt))
    case "reason":
      return Either.right(event.reason ?? "")
    case "transition":
      return Either.right(ctx.transition)
    case "key":
      return Either.right(ctx.key)
    case "payload":
      return Either.right(json(event.payload))
  }
  if (name.startsWith("payload.")) {
    const path = name.slice("payload.".length).split(".")
    return path.includes("")
      ? Either.left(`placeholder \${${name}} has an empty path segment`)
      : Either.right(payloadAt(event.payload, path))
  }
  return Either.left(
    `unknown placeholder \${${name}}; use one of ${PLACEHOLDERS.map((p) => `\${${p}}`).join(", ")} or \${payload.<path>}`
  )
}

/**
 * Fills `${…}` placeholders from the event and the transition: `${id}`, `${name}`, `${kind}`,
 * `${status}`, `${organizer}`, `${fireAt}`, `${firedAt}`, `${missedAt}`, `${occurredAt}`,
 * `${reason}`, `${transition}`, `${key}`, `${payload}` (JSON) and `${payload.x.y}` (a string as
 * is, any other JSON value as JSON, missing → empty). Instants are ISO 8601 UTC, absent values
 * empty. An unknown name is a `Left` naming it.
 *
 * @since 0.1.0
 */
export const template = (text: string, ctx: ActionContext): Either.Either<string, string> => {
  let error: string | undefined
  const result = text.replace(PLACEHOLDER, (whole, name: string) => {
    if (error !== undefined) return whole
    const value = resolve(name.trim(), ctx)
    if (Either.isLeft(value)) {
      error = value.left
      return whole
    }
    return value.right
  })
  return error === undefined ? Either.right(result) : Either.left(error)
}

const invalid = (field: string, why: string) => new InvalidInput({ field, message: `${field}: ${why}` })

const SAMPLE_CONTEXT: ActionContext = {
  key: "",
  transition: "fire",
  occurredAt: new Date(0),
  attempt: 1,
  event: {
    id: "",
    tenant: DEFAULT_TENANT,
    kind: "timer",
    name: null,
    organizer: "",
    attendees: [],
    quorum: 0,
    scheduledAt: null,
    tMinusMs: 0,
    fireAt: null,
    dueAt: null,
    status: "fired",
    payload: null,
    actions: { onFire: [], onMiss: [] },
    maxDeferrals: 0,
    deferralsUsed: 0,
    deadline: null,
    after: null,
    campaignId: null,
    misfire: "fire",
    recurrence: null,
    createdAt: new Date(0),
    updatedAt: new Date(0),
    firedAt: null,
    missedAt: null,
    cancelledAt: null,
    reason: null,
    version: 0
  }
}

/**
 * Schedule-time check of an action's templates (command arguments, file content, log message):
 * an unknown placeholder is an `InvalidInput` naming `field`, rather than a dead letter later.
 *
 * @since 0.1.0
 */
export const checkTemplates = (action: Action, field: string): Either.Either<Action, InvalidInput> => {
  const texts: ReadonlyArray<readonly [string, string]> =
    action._tag === "command"
      ? action.args.map((arg, i) => [`args[${i}]`, arg] as const)
      : action._tag === "file_write"
        ? [["content", action.content]]
        : action._tag === "log" && action.message !== undefined
          ? [["message", action.message]]
          : []
  for (const [part, text] of texts) {
    const filled = template(text, SAMPLE_CONTEXT)
    if (Either.isLeft(filled)) return Either.left(invalid(field, `${part}: ${filled.left}`))
  }
  return Either.right(action)
}

/**
 * Schedule-time check against the runner's configuration (SPEC 3): a command must be a name on
 * the allow-list. Since they could only fail later, as dead letters, it also refuses a webhook
 * secret `checkSecret` rejects and a template `checkTemplates` rejects.
 *
 * @since 0.1.0
 */
export const checkAllowed = (
  action: Action,
  field: string,
  config: ActionsConfig
): Either.Either<Action, InvalidInput> => {
  const templates = checkTemplates(action, field)
  if (Either.isLeft(templates)) return templates
  if (action._tag === "webhook" && action.secret !== undefined) {
    return Either.map(checkSecret(action.secret, field), () => action)
  }
  if (action._tag !== "command") return Either.right(action)
  const commands = config.commands ?? {}
  if (Object.hasOwn(commands, action.name)) return Either.right(action)
  const allowed = Object.keys(commands).sort()
  return Either.left(
    invalid(
      field,
      `command ${JSON.stringify(action.name)} is not on the runner's allow-list (${
        allowed.length === 0 ? "no commands are allowed" : `allowed: ${allowed.join(", ")}`
      })`
    )
  )
}

const SECRET_PREFIX = "whsec_"

const secretKey = (secret: string): Either.Either<Uint8Array, string> => {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret
  const decoded = Encoding.decodeBase64(encoded)
  if (Either.isLeft(decoded) || decoded.right.length === 0) {
    return Either.left("webhook secret must be whsec_<base64> or base64 of at least one byte")
  }
  return Either.right(decoded.right)
}

/**
 * Checks a webhook secret the Standard Webhooks way: `whsec_<base64>` or bare base64, whose
 * decoded bytes are the HMAC key.
 *
 * @since 0.1.0
 */
export const checkSecret = (secret: string, field: string): Either.Either<string, InvalidInput> =>
  Either.mapBoth(secretKey(secret), { onLeft: (why) => invalid(field, why), onRight: () => secret })

/**
 * The Standard Webhooks signature `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed by the
 * decoded secret. Dies on a secret `checkSecret` rejects.
 *
 * @since 0.1.0
 */
export const sign = (
  secret: string,
  id: string,
  timestampSeconds: number,
  body: string
): Effect.Effect<string> =>
  Effect.gen(function* () {
    const key = secretKey(secret)
    if (Either.isLeft(key)) return yield* Effect.dieMessage(key.left)
    const subtle = globalThis.crypto.subtle
    const mac = yield* Effect.promise(async () => {
      const cryptoKey = await subtle.importKey("raw", key.right, { name: "HMAC", hash: "SHA-256" }, false, [
        "sign"
      ])
      return subtle.sign("HMAC", cryptoKey, new TextEncoder().encode(`${id}.${timestampSeconds}.${body}`))
    })
    return `v1,${Encoding.encodeBase64(new Uint8Array(mac))}`
  })

const encodeEvent = Schema.encodeSync(Event)

/**
 * The webhook body: `{type: "event.fired" | "event.missed", event, occurredAt}`, the event
 * encoded as the schema encodes it (ISO 8601 strings for instants).
 *
 * @since 0.1.0
 */
export const webhookBody = (ctx: ActionContext): string =>
  JSON.stringify({
    type: ctx.transition === "fire" ? "event.fired" : "event.missed",
    event: encodeEvent(ctx.event),
    occurredAt: ctx.occurredAt.toISOString()
  })

const deliverWebhook = (
  action: Extract<Action, { _tag: "webhook" }>,
  ctx: ActionContext,
  config: ActionsConfig
): Effect.Effect<Delivered, AttemptFailure, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    let url: URL
    try {
      url = new URL(action.url)
    } catch {
      return yield* permanent(`webhook url ${JSON.stringify(action.url)} is not a URL`)
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      return yield* permanent(`webhook url must be http or https, got ${url.protocol}`)
    }
    if (action.secret !== undefined && Either.isLeft(secretKey(action.secret))) {
      return yield* permanent("webhook secret must be whsec_<base64> or base64 of at least one byte")
    }
    const body = yield* Effect.try({
      try: () => webhookBody(ctx),
      catch: (error) => permanent(`cannot encode the event: ${describe(error)}`)
    })
    const timestamp = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    const headers: Record<string, string> = {
      "webhook-id": ctx.key,
      "webhook-timestamp": String(timestamp)
    }
    if (action.secret !== undefined) {
      headers["webhook-signature"] = yield* sign(action.secret, ctx.key, timestamp, body)
    }
    const request = HttpClientRequest.post(url).pipe(
      HttpClientRequest.bodyText(body, "application/json"),
      HttpClientRequest.setHeaders(headers)
    )
    // Scoped: closing the scope aborts the request, releasing a response body we never read.
    const client = HttpClient.withScope(yield* HttpClient.HttpClient)
    const timeoutMs = config.webhookTimeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS
    const status = yield* client.execute(request).pipe(
      Effect.map((response) => response.status),
      Effect.scoped,
      Effect.mapError((error) => transient(`webhook request failed: ${describe(error)}`)),
      Effect.timeoutFail({
        duration: Duration.millis(timeoutMs),
        onTimeout: () => transient(`webhook got no response within ${timeoutMs} ms`)
      })
    )
    if (status >= 200 && status < 300) return { statusCode: status }
    return yield* new AttemptFailure(
      status === 410
        ? {
            retry: false,
            statusCode: status,
            error: "webhook answered 410 Gone: the receiver asked for no more"
          }
        : { retry: true, statusCode: status, error: `webhook answered HTTP ${status}` }
    )
  })

/** Keeps the last `limit` bytes of what is pushed, without holding the whole output. */
const makeTail = (limit: number) => {
  let chunks: Array<Uint8Array> = []
  let size = 0
  return {
    push(chunk: Uint8Array) {
      chunks.push(chunk)
      size += chunk.length
      while (chunks.length > 1 && size - chunks[0]!.length >= limit) size -= chunks.shift()!.length
    },
    text(): string {
      const all = new Uint8Array(size)
      let offset = 0
      for (const chunk of chunks) {
        all.set(chunk, offset)
        offset += chunk.length
      }
      let start = Math.max(0, size - limit)
      // Do not start in the middle of a UTF-8 sequence.
      while (start < size && (all[start]! & 0xc0) === 0x80) start++
      chunks = []
      size = 0
      return new TextDecoder().decode(all.subarray(start))
    }
  }
}

const deliverCommand = (
  action: Extract<Action, { _tag: "command" }>,
  ctx: ActionContext,
  config: ActionsConfig
): Effect.Effect<Delivered, AttemptFailure, CommandExecutor.CommandExecutor> =>
  Effect.gen(function* () {
    const commands = config.commands ?? {}
    const spec = Object.hasOwn(commands, action.name) ? commands[action.name] : undefined
    if (spec === undefined) return yield* permanent(`command ${action.name} is not on the allow-list`)
    const args: Array<string> = [...(spec.args ?? [])]
    for (const [i, arg] of action.args.entries()) {
      const filled = template(arg, ctx)
      if (Either.isLeft(filled)) return yield* permanent(`args[${i}]: ${filled.left}`)
      args.push(filled.right)
    }
    // Command.make spawns without a shell: every argument reaches the program as one literal argv entry.
    let command = Command.make(spec.command, ...args).pipe(
      Command.env({
        ...spec.env,
        TMINUS_EVENT_ID: ctx.event.id,
        TMINUS_TRANSITION: ctx.transition,
        TMINUS_IDEMPOTENCY_KEY: ctx.key
      }),
      // An empty, closed stdin: a command that reads it sees end of input instead of hanging.
      Command.feed("")
    )
    if (spec.cwd !== undefined) command = Command.workingDirectory(command, spec.cwd)
    const timeoutMs = spec.timeoutMs ?? config.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS
    const tail = makeTail(config.outputTailBytes ?? DEFAULT_OUTPUT_TAIL_BYTES)

    return yield* Effect.scoped(
      Effect.gen(function* () {
        const child = yield* Command.start(command).pipe(
          Effect.mapError((error) => transient(`command ${action.name} could not start: ${describe(error)}`))
        )
        const output = yield* Stream.merge(child.stdout, child.stderr).pipe(
          Stream.runForEach((chunk) => Effect.sync(() => tail.push(chunk))),
          Effect.ignore,
          Effect.fork
        )
        const exit = yield* child.exitCode.pipe(
          Effect.zipLeft(Fiber.join(output)),
          Effect.timeoutOption(Duration.millis(timeoutMs)),
          Effect.mapError(
            (error) =>
              new AttemptFailure({
                retry: true,
                error: `command ${action.name} failed: ${describe(error)}`,
                outputTail: tail.text()
              })
          )
        )
        if (Option.isNone(exit)) {
          // SIGKILL the process group: a command that traps SIGTERM must not outlive its timeout.
          yield* child.kill("SIGKILL").pipe(Effect.ignore)
          yield* Fiber.interrupt(output)
          return yield* new AttemptFailure({
            retry: true,
            error: `command ${action.name} timed out after ${timeoutMs} ms and was killed`,
            outputTail: tail.text()
          })
        }
        const exitCode = exit.value
        const outputTail = tail.text()
        if (exitCode === 0) return { exitCode, outputTail }
        return yield* new AttemptFailure({
          retry: true,
          error: `command ${action.name} exited with code ${exitCode}`,
          exitCode,
          outputTail
        })
      })
    )
  })

const RANDOM_BYTES = 6

const randomSuffix = Effect.sync(() =>
  Array.from(globalThis.crypto.getRandomValues(new Uint8Array(RANDOM_BYTES)), (byte) =>
    byte.toString(16).padStart(2, "0")
  ).join("")
)

/** The segments of a sandbox-relative path, or why it is not one. */
const relativeSegments = (path: string): Either.Either<ReadonlyArray<string>, string> => {
  if (path === "" || path.startsWith("/") || path.startsWith("\\") || /^[A-Za-z]:/.test(path)) {
    return Either.left(`file path ${JSON.stringify(path)} must be relative to the configured directory`)
  }
  if (path.includes("\0")) return Either.left(`file path ${JSON.stringify(path)} contains a NUL byte`)
  // Both separators, as `checkAction` does, so a path means the same thing on every platform.
  const segments = path.split(/[\\/]/)
  if (segments.includes("..")) {
    return Either.left(`file path ${JSON.stringify(path)} must not leave the configured directory`)
  }
  const kept = segments.filter((segment) => segment !== "" && segment !== ".")
  return kept.length === 0
    ? Either.left(`file path ${JSON.stringify(path)} names no file`)
    : Either.right(kept)
}

const deliverFile = (
  action: Extract<Action, { _tag: "file_write" }>,
  ctx: ActionContext,
  config: ActionsConfig
): Effect.Effect<Delivered, AttemptFailure, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function* () {
    if (config.fileDirectory === undefined) {
      return yield* permanent("file_write needs a configured file directory; this runner has none")
    }
    const segments = relativeSegments(action.path)
    if (Either.isLeft(segments)) return yield* permanent(segments.left)
    const content = template(action.content, ctx)
    if (Either.isLeft(content)) return yield* permanent(`content: ${content.left}`)
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const relative = segments.right.join("/")
    const io = (what: string) => (error: unknown) =>
      transient(`file_write ${relative}: ${what}: ${describe(error)}`)

    yield* fs
      .makeDirectory(config.fileDirectory, { recursive: true })
      .pipe(Effect.mapError(io("cannot create the directory")))
    const root = yield* fs
      .realPath(config.fileDirectory)
      .pipe(Effect.mapError(io("cannot resolve the directory")))
    const inside = (real: string) => {
      const rel = path.relative(root, real)
      return rel === "" || (rel !== ".." && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel))
    }
    const escapes = permanent(
      `file path ${JSON.stringify(action.path)} leads outside the configured directory`
    )

    // One directory at a time, resolving each before creating anything in it, so that a
    // symlinked directory pointing outside is refused before a single directory is made there.
    let dir = root
    for (const segment of segments.right.slice(0, -1)) {
      const next = path.join(dir, segment)
      const info = yield* fs.stat(next).pipe(Effect.option)
      if (Option.isNone(info)) {
        yield* fs.makeDirectory(next).pipe(Effect.mapError(io(`cannot create ${segment}`)))
      } else if (info.value.type !== "Directory") {
        return yield* permanent(`file path ${JSON.stringify(action.path)}: ${segment} is not a directory`)
      }
      const real = yield* fs.realPath(next).pipe(Effect.mapError(io(`cannot resolve ${segment}`)))
      if (!inside(real)) return yield* escapes
      dir = real
    }

    const base = segments.right[segments.right.length - 1]!
    const target = path.join(dir, base)
    const isLink = yield* fs.readLink(target).pipe(
      Effect.as(true),
      Effect.orElseSucceed(() => false)
    )
    if (isLink)
      return yield* permanent(
        `file path ${JSON.stringify(action.path)} is a symbolic link; refusing to write through it`
      )
    const existing = yield* fs.stat(target).pipe(Effect.option)
    if (Option.isSome(existing) && existing.value.type !== "File") {
      return yield* permanent(`file path ${JSON.stringify(action.path)} exists and is not a regular file`)
    }

    // Write beside the target, then rename over it: a reader sees the old file or the new one.
    const temp = path.join(dir, `.${base}.${yield* randomSuffix}.tmp`)
    yield* fs.writeFileString(temp, content.right, { flag: "wx" }).pipe(
      Effect.zipRight(fs.rename(temp, target)),
      Effect.mapError(io("cannot write")),
      Effect.onError(() => fs.remove(temp).pipe(Effect.ignore))
    )
    return { path: relative }
  })

const deliverLog = (
  action: Extract<Action, { _tag: "log" }>,
  ctx: ActionContext
): Effect.Effect<Delivered, AttemptFailure> =>
  Effect.gen(function* () {
    const message = template(action.message ?? "event ${id} ${transition}", ctx)
    if (Either.isLeft(message)) return yield* permanent(`message: ${message.left}`)
    yield* Effect.logInfo(message.right).pipe(
      Effect.annotateLogs({ key: ctx.key, eventId: ctx.event.id, transition: ctx.transition })
    )
    return {}
  })

/**
 * The longest one attempt of `action` may take under `config` before it gives up by itself: the
 * webhook or command timeout (a command's own `timeoutMs` wins), or a few seconds for file writes
 * and logs.
 *
 * @since 0.1.0
 */
export const attemptTimeoutMs = (action: Action, config: ActionsConfig): number => {
  switch (action._tag) {
    case "webhook":
      return config.webhookTimeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS
    case "command": {
      const commands = config.commands ?? {}
      const own = Object.hasOwn(commands, action.name) ? commands[action.name]?.timeoutMs : undefined
      return own ?? config.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS
    }
    default:
      return 5_000
  }
}

/**
 * Runs one attempt of one action. Never fails: every problem is a `Failed` outcome, with
 * `retry: false` when another attempt cannot help (HTTP 410, a command not on the allow-list, a
 * path escaping the sandbox, a bad template, no configured file directory).
 *
 * @since 0.1.0
 */
export const deliver = (
  action: Action,
  ctx: ActionContext,
  config: ActionsConfig
): Effect.Effect<
  AttemptOutcome,
  never,
  HttpClient.HttpClient | CommandExecutor.CommandExecutor | FileSystem.FileSystem | Path.Path
> =>
  Effect.gen(function* () {
    const start = yield* Clock.currentTimeMillis
    const attempt: Effect.Effect<
      Delivered,
      AttemptFailure,
      HttpClient.HttpClient | CommandExecutor.CommandExecutor | FileSystem.FileSystem | Path.Path
    > =
      action._tag === "webhook"
        ? deliverWebhook(action, ctx, config)
        : action._tag === "command"
          ? deliverCommand(action, ctx, config)
          : action._tag === "file_write"
            ? deliverFile(action, ctx, config)
            : deliverLog(action, ctx)
    const result = yield* attempt.pipe(
      Effect.catchAllDefect((defect) => Effect.fail(transient(`unexpected error: ${describe(defect)}`))),
      Effect.either
    )
    const durationMs = (yield* Clock.currentTimeMillis) - start
    if (Either.isRight(result))
      return { _tag: "Delivered", durationMs, ...result.right } satisfies AttemptOutcome
    const failure = result.left
    return {
      _tag: "Failed",
      retry: failure.retry,
      error: failure.error,
      durationMs,
      ...(failure.statusCode === undefined ? {} : { statusCode: failure.statusCode }),
      ...(failure.exitCode === undefined ? {} : { exitCode: failure.exitCode }),
      ...(failure.outputTail === undefined ? {} : { outputTail: failure.outputTail })
    } satisfies AttemptOutcome
  })
