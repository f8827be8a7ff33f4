/**
 * A typed client of a t-minus server, for TypeScript services: an Effect layer (`RemoteClient`)
 * and a Promise client (`TMinusClient.connect`) whose methods are named and typed as the embedded
 * `TMinus` facade's, so moving from embedded to remote is one line:
 *
 * ```ts
 * const tm = await TMinus.open()                                              // embedded
 * const tm = await TMinusClient.connect({ url: "http://127.0.0.1:7420", apiKey }) // remote
 * ```
 *
 * Runtime-agnostic: it uses the global `fetch` and `WebSocket` (Node ≥ 22, Bun, Deno, browsers;
 * `pnpm test` runs it on Node, Bun and Deno). On Deno, grant `--allow-net` for the server and
 * `--allow-env=MSGPACKR_NATIVE_ACCELERATION_DISABLED`: `@effect/rpc`'s serialization module loads
 * `msgpackr`, which reads that variable when it loads.
 *
 * @since 0.1.0
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as Socket from "@effect/platform/Socket"
import type * as Rpc from "@effect/rpc/Rpc"
import * as RpcClient from "@effect/rpc/RpcClient"
import type { RpcClientError } from "@effect/rpc/RpcClientError"
import type * as RpcGroup from "@effect/rpc/RpcGroup"
import * as RpcMiddleware from "@effect/rpc/RpcMiddleware"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Stream from "effect/Stream"
import type { CancelOptions } from "./Coordinator.ts"
import type { Campaign, Event, HistoryEntry, QueuedAction, TickResult, Transition } from "./Event.ts"
import type { ActionFilter, EventFilter } from "./EventStore.ts"
import * as Calls from "./internal/calls.ts"
import type { DurationInput, ScheduleInput, TimerInput } from "./Lifecycle.ts"
import { Authentication, TMinusRpcs, type WaitResult } from "./Rpc.ts"
import type { WatchFilter } from "./Runner.ts"
import type { TimeInput } from "./TimeGrammar.ts"

/**
 * Where the server is and who calls.
 *
 * @since 0.1.0
 */
export interface ConnectOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:7420` (`/rpc` and `/ws` are added). */
  readonly url: string
  /** An API key from `t-minus-server keys create`; sent as `authorization: Bearer <key>`. */
  readonly apiKey?: string | undefined
  /**
   * `websocket` (the default): one connection for every call, opened again by the next call after
   * a failure, best for `watch` and `waitFor` (`watch` opens a second one, through `RpcClient`, at
   * its first use). `http`: one streaming POST per call, nothing kept open.
   */
  readonly protocol?: "websocket" | "http" | undefined
}

/**
 * The client side of `Authentication`: adds the API key to every request.
 *
 * @since 0.1.0
 */
export const layerAuthentication = (apiKey: string | undefined) =>
  RpcMiddleware.layerClient(Authentication, ({ request }) =>
    Effect.succeed(
      apiKey === undefined
        ? request
        : { ...request, headers: Headers.set(request.headers, "authorization", `Bearer ${apiKey}`) }
    )
  )

const endpoint = (base: string, path: string, websocket: boolean) => {
  const url = new URL(path, base.endsWith("/") ? base : `${base}/`)
  if (websocket) url.protocol = url.protocol === "https:" ? "wss:" : "ws:"
  return url.toString()
}

/**
 * The transport to a server: streaming HTTP (ndjson) or a WebSocket (JSON frames).
 *
 * @since 0.1.0
 */
export const layerProtocol = (options: ConnectOptions): Layer.Layer<RpcClient.Protocol> =>
  options.protocol === "http"
    ? RpcClient.layerProtocolHttp({
        url: endpoint(options.url, "rpc", false),
        // A refusal (413, 415, 503 while the server drains) is an error, not an endless wait.
        // (The protocol turns any failure of its client into an `RpcClientError`.)
        transformClient: HttpClient.filterStatusOk as <E, R>(
          client: HttpClient.HttpClient.With<E, R>
        ) => HttpClient.HttpClient.With<E, R>
      }).pipe(Layer.provide(RpcSerialization.layerNdjson), Layer.provide(FetchHttpClient.layer))
    : RpcClient.layerProtocolSocket({ retryTransientErrors: true }).pipe(
        Layer.provide(Socket.layerWebSocket(endpoint(options.url, "ws", true))),
        Layer.provide(Socket.layerWebSocketConstructorGlobal),
        Layer.provide(RpcSerialization.layerJson)
      )

type RpcTag = RpcGroup.Rpcs<typeof TMinusRpcs>["_tag"]
type RpcOf<Tag extends RpcTag> = Rpc.ExtractTag<RpcGroup.Rpcs<typeof TMinusRpcs>, Tag>
type CallPayload<Tag extends RpcTag> = Rpc.PayloadConstructor<RpcOf<Tag>>
type CallSuccess<Tag extends RpcTag> = Rpc.Success<RpcOf<Tag>>

/** @since 0.1.0 */
export type RemoteClientShape = RpcClient.RpcClient<RpcGroup.Rpcs<typeof TMinusRpcs>, RpcClientError>

/**
 * The typed RPC client of a server, as an Effect service: `client.schedule({ input })`, …
 *
 * @since 0.1.0
 */
export class RemoteClient extends Context.Tag("@t-minus/core/Client/RemoteClient")<
  RemoteClient,
  RemoteClientShape
>() {}

/**
 * `RemoteClient` connected to a server; the connection lives as long as the layer.
 *
 * @since 0.1.0
 */
export const layer = (options: ConnectOptions): Layer.Layer<RemoteClient> =>
  Layer.scoped(RemoteClient, RpcClient.make(TMinusRpcs)).pipe(
    Layer.provide(layerProtocol(options)),
    Layer.provide(layerAuthentication(options.apiKey))
  )

/**
 * The Promise client. Methods match `TMinus` (and fail with the same typed errors, plus
 * `Forbidden`, `Unauthenticated` and `ResourceExhausted` from the server, and `RpcClientError`
 * when the server cannot be reached); `tick` and `cleanup` are the server's, and `waitFor` is
 * added.
 *
 * @since 0.1.0
 */
export class TMinusClient {
  /** Connects (a WebSocket by default) and checks the connection with one call. */
  static async connect(options: ConnectOptions): Promise<TMinusClient> {
    const client = new TMinusClient(options)
    try {
      await client.call("listCampaigns", undefined)
    } catch (error) {
      await client.close()
      throw error
    }
    return client
  }

  /**
   * A client without the check call of `connect`: nothing is sent until the first call, which
   * fails if the server cannot be reached. For a short-lived client (one per request) over HTTP.
   */
  static make(options: ConnectOptions): TMinusClient {
    return new TMinusClient(options)
  }

  /** For `watch`: the `RpcClient`, connected at its first use. */
  private readonly runtime: ManagedRuntime.ManagedRuntime<RemoteClient, never>
  /** Every call that answers once. */
  private readonly calls: Calls.Calls

  private constructor(options: ConnectOptions) {
    this.runtime = ManagedRuntime.make(layer(options))
    const headers: ReadonlyArray<readonly [string, string]> =
      options.apiKey === undefined ? [] : [["authorization", `Bearer ${options.apiKey}`]]
    this.calls =
      options.protocol === "http"
        ? Calls.http(TMinusRpcs, endpoint(options.url, "rpc", false), headers)
        : Calls.socket(TMinusRpcs, endpoint(options.url, "ws", true), headers)
  }

  private call<const Tag extends RpcTag>(tag: Tag, payload: CallPayload<Tag>): Promise<CallSuccess<Tag>> {
    return this.calls.call(tag, payload)
  }

  schedule(input: ScheduleInput): Promise<Event> {
    return this.call("schedule", { input })
  }
  scheduleMany(inputs: ReadonlyArray<ScheduleInput>): Promise<ReadonlyArray<Event>> {
    return this.call("scheduleMany", { inputs })
  }
  scheduleTimer(input: TimerInput): Promise<Event> {
    return this.call("scheduleTimer", { input })
  }
  confirm(eventId: string, agent: string): Promise<Event> {
    return this.call("confirm", { eventId, agent })
  }
  defer(eventId: string, agent: string, duration: DurationInput): Promise<Event> {
    return this.call("defer", { eventId, agent, duration })
  }
  decline(eventId: string, agent: string): Promise<Event> {
    return this.call("decline", { eventId, agent })
  }
  cancel(eventId: string, options: CancelOptions = {}): Promise<Event> {
    return this.call("cancel", { eventId, ...options })
  }
  reschedule(eventId: string, at: TimeInput, options: { actor?: string } = {}): Promise<Event> {
    return this.call("reschedule", { eventId, at, ...options })
  }
  get(eventId: string): Promise<Event> {
    return this.call("get", { eventId })
  }
  list(filter: Omit<EventFilter, "tenant"> = {}): Promise<ReadonlyArray<Event>> {
    return this.call("list", filter)
  }
  history(eventId: string): Promise<ReadonlyArray<HistoryEntry>> {
    return this.call("history", { eventId })
  }
  createCampaign(name: string): Promise<Campaign> {
    return this.call("createCampaign", { name })
  }
  addToCampaign(campaignId: string, event: string | ScheduleInput): Promise<Event> {
    return this.call("addToCampaign", { campaignId, event })
  }
  link(campaignId: string, from: string, to: string): Promise<Campaign> {
    return this.call("link", { campaignId, from, to })
  }
  executionOrder(campaignId: string): Promise<ReadonlyArray<string>> {
    return this.call("executionOrder", { campaignId })
  }
  getCampaign(campaignId: string): Promise<Campaign> {
    return this.call("getCampaign", { campaignId })
  }
  listCampaigns(): Promise<ReadonlyArray<Campaign>> {
    return this.call("listCampaigns", undefined)
  }
  listActions(filter: Omit<ActionFilter, "tenant"> = {}): Promise<ReadonlyArray<QueuedAction>> {
    return this.call("listActions", filter)
  }
  retryAction(key: string, options: { actor?: string } = {}): Promise<QueuedAction> {
    return this.call("retryAction", { key, ...options })
  }
  /**
   * Processes what is due now (or at `now`, which may not be later than the server's clock) and
   * reports the caller's tenant's events. Admins only: the server's runner ticks by itself.
   */
  tick(now?: TimeInput): Promise<TickResult> {
    return this.call("tick", now === undefined ? {} : { now })
  }
  /** Removes the tenant's events that ended at least `olderThan` ago; returns how many. Admins only. */
  cleanup(olderThan?: DurationInput): Promise<number> {
    return this.call("cleanup", olderThan === undefined ? {} : { olderThan })
  }
  /** Resolves when the event fires, is missed or cancelled, or after `timeout` (`outcome: "timeout"`). */
  waitFor(eventId: string, timeout?: DurationInput): Promise<WaitResult> {
    return this.call("waitFor", timeout === undefined ? { eventId } : { eventId, timeout })
  }
  /**
   * Calls `listener` with every transition of the caller's tenant that passes `filter`, from now
   * on, in commit order, until the returned function is called or the client closes. `onError`
   * hears a lost connection (a WebSocket client reconnects for the next `watch`).
   */
  watch(
    listener: (transition: Transition) => void,
    filter: Omit<WatchFilter, "tenant"> = {},
    onError: (error: unknown) => void = () => {}
  ): () => void {
    const fiber = this.runtime.runFork(
      Effect.flatMap(RemoteClient, (c) =>
        Stream.runForEach(c.watch(filter), (t) => Effect.sync(() => listener(t)))
      ).pipe(
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause) ? Effect.void : Effect.sync(() => onError(Cause.squash(cause)))
        )
      )
    )
    return () => {
      this.runtime.runFork(Fiber.interrupt(fiber))
    }
  }
  /** Closes the connection; calls in flight fail. */
  close(): Promise<void> {
    this.calls.close()
    return this.runtime.dispose()
  }
}
