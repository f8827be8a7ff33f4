/**
 * An agent team coordinating a deploy through t-minus, each agent a LangChain `createAgent` loop
 * with its own tool set:
 *
 * - `release-manager` schedules the deploy: it fires in 4 s only if builder, tester and reviewer
 *   all confirm;
 * - `builder` and `tester` confirm at once and wait for it;
 * - `reviewer` needs 2 s more: it defers, so at the fire time the countdown extends (a deferral
 *   cascade); it waits until it is asked again, confirms, and the deploy fires.
 *
 * Without configuration it runs on a SQLite file in a temporary directory, with scripted models
 * (LangChain's `fakeModel`), so it needs no API key:
 *
 *   pnpm --filter @t-minus/langchain-tools example
 *
 * With `T_MINUS_MODEL` (a `provider:model` for LangChain's `initChatModel`, such as
 * `openai:gpt-4.1-mini` with `@langchain/openai` installed and `OPENAI_API_KEY` set), real models
 * play the same parts. With `T_MINUS_SERVER` (and `T_MINUS_API_KEY`), it runs against a server.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { pathToFileURL } from "node:url"
import type { BaseChatModel } from "@langchain/core/language_models/chat_models"
import { AIMessage, type BaseMessage, ToolMessage } from "@langchain/core/messages"
import { fakeModel } from "@langchain/core/testing"
import { TMinus } from "@t-minus/core"
import { TMinusClient } from "@t-minus/core/client"
import { createAgent, initChatModel } from "langchain"
import { createTMinusTools, type Tools } from "../src/index.ts"

export const ORGANIZER = "release-manager"
export const ATTENDEES = ["builder", "tester", "reviewer"] as const

/** What a scripted agent does next, from the last tool result it read (`undefined` at first). */
type Decide = (last: any) => { readonly call: string; readonly args: Record<string, unknown> } | string

/** The parsed content of the last tool result in the conversation. */
const lastResult = (messages: ReadonlyArray<BaseMessage>): unknown => {
  const last = messages.at(-1)
  if (!ToolMessage.isInstance(last)) return undefined
  return JSON.parse(String(last.content))
}

let calls = 0

/** A model that plays a script: each turn is a function of the last tool result. */
export const scripted = (decide: Decide, turns = 40): BaseChatModel => {
  const model = fakeModel()
  for (let i = 0; i < turns; i++) {
    model.respond((messages) => {
      const next = decide(lastResult(messages))
      return typeof next === "string"
        ? new AIMessage(next)
        : new AIMessage({
            content: "",
            tool_calls: [{ id: `call_${++calls}`, name: next.call, args: next.args, type: "tool_call" }]
          })
    })
  }
  return model
}

const ended = (outcome: unknown) => outcome === "fired" || outcome === "missed" || outcome === "cancelled"

/** The scripts of the team's parts, for the event `eventId`. */
export const scripts = {
  organizer: (): Decide => (last) =>
    last === undefined
      ? {
          call: "schedule_event",
          args: {
            kind: "deploy",
            name: "deploy v2.4",
            at: "+4s",
            attendees: [...ATTENDEES],
            quorum: 3,
            payloadJson: JSON.stringify({ version: "2.4.0" })
          }
        }
      : last.event !== undefined
        ? `Scheduled ${last.event.id}, firing ${last.event.remaining}.`
        : `Could not schedule: ${JSON.stringify(last)}`,
  ready:
    (eventId: string): Decide =>
    (last) =>
      last === undefined
        ? { call: "confirm_readiness", args: { eventId } }
        : ended(last.outcome)
          ? `The deploy ${last.outcome}.`
          : last.error !== undefined
            ? `Stopped: ${last.error.message}`
            : { call: "wait_for_event", args: { eventId, timeout: "20s" } },
  needsTime:
    (eventId: string): Decide =>
    (last) => {
      if (last === undefined) return { call: "defer", args: { eventId, duration: "2s" } }
      if (ended(last.outcome)) return `The deploy ${last.outcome}.`
      if (last.error !== undefined) return `Stopped: ${last.error.message}`
      // Asked again after the cascade: now ready.
      if (last.event?.yourResponse === "pending" && last.event.deferralsUsed > 0) {
        return { call: "confirm_readiness", args: { eventId } }
      }
      return { call: "wait_for_event", args: { eventId, timeout: "1s" } }
    }
}

/** What a real model is told for each part. */
const prompts = {
  organizer: `You are ${ORGANIZER}. Schedule a deploy event named "deploy v2.4" at +4s with attendees ${ATTENDEES.join(", ")} and quorum 3, then reply with its id.`,
  ready: (agent: string, eventId: string) =>
    `You are ${agent}. You are ready for the deploy event ${eventId}: confirm your readiness, then call wait_for_event until it fires, is missed or cancelled, and say how it ended.`,
  needsTime: (agent: string, eventId: string) =>
    `You are ${agent}. Your review of the deploy event ${eventId} needs 2 more seconds: first defer by "2s". ` +
    `Then call wait_for_event with timeout "1s" repeatedly; once the event shows yourResponse "pending" and deferralsUsed of 1 or more, ` +
    "confirm your readiness, then wait until it fires, and say how it ended."
}

export interface TeamOptions {
  /** What each agent's tools act through (the same engine, or a client with the agent's own key). */
  readonly clientFor: (agent: string) => Promise<Tools.Backend>
  /** The model of each part; default the scripts. */
  readonly modelFor?: ((agent: string) => Promise<BaseChatModel>) | undefined
  readonly log?: ((line: string) => void) | undefined
}

export interface TeamResult {
  readonly eventId: string
  /** Every agent's conversation. */
  readonly conversations: Readonly<Record<string, ReadonlyArray<BaseMessage>>>
}

/** One message of a conversation as a log line. */
const describe = (agent: string, message: BaseMessage): Array<string> => {
  const who = agent.padEnd(15)
  if (AIMessage.isInstance(message)) {
    return [
      ...(message.tool_calls ?? []).map((call) => `${who} → ${call.name} ${JSON.stringify(call.args)}`),
      ...(typeof message.content === "string" && message.content !== ""
        ? [`${who} : ${message.content}`]
        : [])
    ]
  }
  if (!ToolMessage.isInstance(message)) return []
  const result = JSON.parse(String(message.content))
  if (result.error !== undefined) return [`${who} ← error ${result.error.tag}: ${result.error.message}`]
  const event = result.event
  if (event === undefined) return [`${who} ← ${String(message.content)}`]
  return [
    `${who} ← ${result.outcome ?? event.status}, ${event.confirmed}/${event.quorum} confirmed ${event.remaining ?? ""}`
  ]
}

/** Runs one agent on a task, logging each step as it happens; returns its conversation. */
const runAgent = async (
  agent: string,
  model: BaseChatModel,
  client: Tools.Backend,
  task: string,
  log: (line: string) => void
) => {
  const team = createAgent({ model, tools: createTMinusTools({ agent, client }) })
  const messages: Array<BaseMessage> = []
  const updates = await team.stream(
    { messages: [{ role: "user", content: task }] },
    { streamMode: "updates" }
  )
  for await (const update of updates) {
    for (const node of Object.values(update as Record<string, { messages?: Array<BaseMessage> }>)) {
      for (const message of node?.messages ?? []) {
        messages.push(message)
        for (const line of describe(agent, message)) log(line)
      }
    }
  }
  return messages
}

/** The team at work; resolves when every agent has finished. */
export const deployTeam = async (options: TeamOptions): Promise<TeamResult> => {
  const log = options.log ?? (() => {})
  const model = async (agent: string, decide: Decide) =>
    options.modelFor === undefined ? scripted(decide) : options.modelFor(agent)
  const organizer = await runAgent(
    ORGANIZER,
    await model(ORGANIZER, scripts.organizer()),
    await options.clientFor(ORGANIZER),
    prompts.organizer,
    log
  )
  const scheduled = organizer
    .filter((m) => ToolMessage.isInstance(m))
    .map((m) => JSON.parse(String(m.content)))
    .find((r) => r.event !== undefined)
  if (scheduled === undefined) throw new Error(`${ORGANIZER} did not schedule the deploy`)
  const eventId: string = scheduled.event.id
  const [builder, tester, reviewer] = ATTENDEES
  const conversations = await Promise.all(
    ATTENDEES.map(async (agent) =>
      runAgent(
        agent,
        await model(agent, agent === reviewer ? scripts.needsTime(eventId) : scripts.ready(eventId)),
        await options.clientFor(agent),
        agent === reviewer ? prompts.needsTime(agent, eventId) : prompts.ready(agent, eventId),
        log
      )
    )
  )
  return {
    eventId,
    conversations: {
      [ORGANIZER]: organizer,
      [builder]: conversations[0]!,
      [tester]: conversations[1]!,
      [reviewer]: conversations[2]!
    }
  }
}

const main = async () => {
  const server = process.env.T_MINUS_SERVER
  const dir = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "t-minus-team-"))
  const client: TMinus | TMinusClient =
    server === undefined || server === ""
      ? await TMinus.open({ filename: NodePath.join(dir, "team.db"), runner: true })
      : await TMinusClient.connect({
          url: server,
          ...(process.env.T_MINUS_API_KEY === undefined ? {} : { apiKey: process.env.T_MINUS_API_KEY })
        })
  const spec = process.env.T_MINUS_MODEL
  try {
    console.log(
      `deploy team on ${server ?? "an embedded SQLite file"}, ${spec === undefined ? "scripted models (set T_MINUS_MODEL for a real one)" : `model ${spec}`}\n`
    )
    const started = Date.now()
    const { eventId } = await deployTeam({
      clientFor: async () => client,
      // The tools' schemas are made for strict function calling: ask OpenAI models to use it.
      modelFor:
        spec === undefined
          ? undefined
          : async () =>
              (await initChatModel(
                spec,
                spec.startsWith("openai:") ? { supportsStrictToolCalling: true } : {}
              )) as unknown as BaseChatModel,
      log: (line) => console.log(`${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s  ${line}`)
    })
    const history = await client.history(eventId)
    console.log(`\nhistory of ${eventId}:`)
    for (const entry of history)
      console.log(`  ${entry.at.toISOString()}  ${entry.type.padEnd(10)} ${entry.actor}`)
  } finally {
    await client.close()
    Fs.rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main()
