/**
 * The TUI (`t-minus tui`): a live board of events sorted by fire time, each with a countdown
 * that ticks every second, a quorum bar and its attendees' states; a detail pane with the
 * selected event's history; a campaign view (order and dependencies); keys to confirm, defer,
 * decline and cancel as one agent, to filter, and for help.
 *
 * Written with `React.createElement` (Node runs this file by stripping types: no JSX). Time comes
 * from `clock`, so tests control it.
 *
 * @since 0.1.0
 */
import { CampaignGraph, type Event as Ev } from "@t-minus/core"
import { Box, Text, useApp, useInput, useWindowSize } from "ink"
import { createElement as h, type ReactNode, useCallback, useEffect, useMemo, useRef, useState } from "react"
import {
  attendeeMark,
  boardOrder,
  countdown,
  historyLine,
  isoSeconds,
  paint,
  shortDuration,
  shortId
} from "../format.ts"

/** What the board shows and acts on: the backend, seen through what the TUI needs. @since 0.1.0 */
export interface Source {
  /** `embedded ./t-minus.db` or `remote http://…`. */
  readonly label: string
  readonly load: () => Promise<{
    readonly events: ReadonlyArray<Ev.Event>
    readonly campaigns: ReadonlyArray<Ev.Campaign>
  }>
  readonly history: (eventId: string) => Promise<ReadonlyArray<Ev.HistoryEntry>>
  /** Calls `onChange` whenever the data may have changed (another process, the runner, …). */
  readonly subscribe: (onChange: () => void) => () => void
  readonly confirm: (eventId: string, agent: string) => Promise<unknown>
  readonly defer: (eventId: string, agent: string, duration: string) => Promise<unknown>
  readonly decline: (eventId: string, agent: string) => Promise<unknown>
  readonly cancel: (eventId: string, actor: string | undefined) => Promise<unknown>
}

/** @since 0.1.0 */
export interface AppProps {
  readonly source: Source
  /** Who the keys act as (`--as`). */
  readonly agent: string | undefined
  /** Epoch ms; default `Date.now`. */
  readonly clock?: (() => number) | undefined
  /** How often the countdowns move; default 1000 ms. */
  readonly tickMs?: number | undefined
}

type Prompt =
  | { readonly kind: "defer"; readonly event: Ev.Event; readonly text: string }
  | { readonly kind: "cancel"; readonly event: Ev.Event }
  | { readonly kind: "filter"; readonly text: string }

const noColor = paint(false)

const matches = (event: Ev.Event, filter: string) => {
  if (filter === "") return true
  const needle = filter.toLowerCase()
  return [
    event.id,
    event.kind,
    event.name ?? "",
    event.status,
    event.organizer,
    ...event.attendees.map((a) => a.agent)
  ]
    .join(" ")
    .toLowerCase()
    .includes(needle)
}

const STATUS_COLOR: Record<Ev.EventStatus, string> = {
  scheduled: "blue",
  fired: "green",
  missed: "red",
  cancelled: "gray"
}

const ATTENDEE_COLOR: Record<Ev.ResponseStatus, string> = {
  confirmed: "green",
  pending: "yellow",
  deferred: "cyan",
  declined: "red",
  missed: "magenta"
}

/** `[██░]`: confirmations against the quorum (at most 5 cells). @since 0.1.0 */
export const quorumBar = (event: Ev.Event): string => {
  const confirmed = event.attendees.filter((a) => a.status === "confirmed").length
  if (event.quorum === 0) return "[]"
  const cells = Math.min(event.quorum, 5)
  const filled = Math.min(cells, Math.round((Math.min(confirmed, event.quorum) / event.quorum) * cells))
  return `[${"█".repeat(filled)}${"░".repeat(cells - filled)}]`
}

const clip = (text: string, width: number) =>
  text.length > width ? `${text.slice(0, Math.max(0, width - 1))}…` : text.padEnd(width)

/** The countdown while scheduled; once ended, how and when (`fired 12:05:00`, `cancelled`). */
const when = (event: Ev.Event, now: number) => {
  if (event.status === "cancelled") return "cancelled"
  if (event.status !== "scheduled") {
    const ended = event.firedAt ?? event.missedAt
    return `${event.status} ${ended === null ? "" : isoSeconds(ended).slice(11, 19)}`
  }
  return event.fireAt === null ? "waiting" : countdown(event.fireAt.getTime(), now)
}

/** One event on one line (cut at the terminal's edge): nested texts keep their spaces. */
const Row = ({
  event,
  selected,
  now,
  width
}: {
  readonly event: Ev.Event
  readonly selected: boolean
  readonly now: number
  readonly width: number
}): ReactNode => {
  const name = event.name ?? event.kind
  // Marker, id, kind, countdown, bar and quorum take 53 columns; the name gets what is left
  // after 20 for the attendees (8 to 24), the same on every row so that columns line up.
  const nameWidth = Math.max(8, Math.min(24, width - 53 - 20))
  const confirmed = event.attendees.filter((a) => a.status === "confirmed").length
  return h(
    Text,
    { wrap: "truncate-end", bold: selected },
    h(Text, { color: selected ? "cyan" : "gray" }, selected ? "› " : "  "),
    h(Text, { dimColor: !selected }, `${shortId(event.id)} `),
    `${clip(event.kind, 10)} ${clip(name, nameWidth)} `,
    h(
      Text,
      {
        bold: event.status === "scheduled",
        color: event.status === "scheduled" ? "white" : STATUS_COLOR[event.status]
      },
      `${clip(when(event, now), 16)} `
    ),
    h(Text, { color: "green" }, `${clip(quorumBar(event), 7)} `),
    `${clip(`${confirmed}/${event.quorum}`, 5)} `,
    ...event.attendees.flatMap((a, i) => [
      i === 0 ? "" : " ",
      h(Text, { key: a.agent, color: ATTENDEE_COLOR[a.status] }, `${a.agent}${attendeeMark(a)}`)
    ])
  )
}

const Detail = ({
  event,
  history,
  now,
  lines
}: {
  readonly event: Ev.Event | undefined
  readonly history: ReadonlyArray<Ev.HistoryEntry>
  readonly now: number
  readonly lines: number
}): ReactNode => {
  if (event === undefined) return h(Text, { dimColor: true }, "nothing selected")
  const fires =
    event.fireAt === null
      ? `after ${shortId(event.after?.eventId ?? "")} + ${shortDuration(event.after?.offsetMs ?? 0)}`
      : `${isoSeconds(event.fireAt)}  ${when(event, now)}`
  return h(
    Box,
    { flexDirection: "column" },
    h(
      Text,
      { wrap: "truncate-end" },
      h(Text, { bold: true }, event.name ?? event.kind),
      `  ${event.kind}  ${shortId(event.id)}  organizer ${event.organizer}  fires ${fires}${event.reason === null ? "" : `  (${event.reason})`}`
    ),
    ...history
      .slice(-Math.max(0, lines - 1))
      .map((entry, i) =>
        h(Text, { key: String(i), dimColor: true, wrap: "truncate-end" }, historyLine(entry, noColor))
      )
  )
}

const Campaigns = ({
  campaigns,
  events,
  now
}: {
  readonly campaigns: ReadonlyArray<Ev.Campaign>
  readonly events: ReadonlyMap<string, Ev.Event>
  readonly now: number
}): ReactNode =>
  campaigns.length === 0
    ? h(Text, { dimColor: true }, "no campaigns")
    : h(
        Box,
        { flexDirection: "column" },
        ...campaigns.map((c) =>
          h(
            Box,
            { key: c.id, flexDirection: "column", marginBottom: 1 },
            h(Text, { bold: true }, `${c.name}  `, h(Text, { dimColor: true }, shortId(c.id))),
            ...CampaignGraph.executionOrder(c.events, c.dependencies).map((id, i) => {
              const e = events.get(id)
              const before = c.dependencies.filter(([, to]) => to === id).map(([from]) => shortId(from))
              return h(
                Text,
                { key: id, wrap: "truncate-end" },
                `  ${i + 1}. ${shortId(id)} ${clip(e?.name ?? e?.kind ?? "?", 18)} `,
                h(
                  Text,
                  { color: e === undefined ? "gray" : STATUS_COLOR[e.status] },
                  clip(e?.status ?? "", 10)
                ),
                ` ${e === undefined ? "" : when(e, now)}`,
                before.length === 0 ? "" : h(Text, { dimColor: true }, `  after ${before.join(", ")}`)
              )
            })
          )
        )
      )

const HELP_LINES = [
  "↑/↓ or j/k   select an event",
  "c            confirm as the --as agent",
  "d            defer (asks for a duration: 10m, 90 = seconds)",
  "x            decline",
  "K            cancel the event (asks first)",
  "/            filter by name, kind, status, id or attendee (Esc clears)",
  "Tab          campaigns: order and dependencies",
  "?            this help",
  "q            quit"
]

/** @since 0.1.0 */
export const App = ({ source, agent, clock = Date.now, tickMs = 1000 }: AppProps): ReactNode => {
  const { exit } = useApp()
  const { columns, rows } = useWindowSize()
  const [now, setNow] = useState(clock())
  const [data, setData] = useState<{
    readonly events: ReadonlyArray<Ev.Event>
    readonly campaigns: ReadonlyArray<Ev.Campaign>
  } | null>(null)
  const [selectedId, setSelectedId] = useState<string | undefined>(undefined)
  const [history, setHistory] = useState<ReadonlyArray<Ev.HistoryEntry>>([])
  const [filter, setFilter] = useState("")
  const [prompt, setPromptState] = useState<Prompt | undefined>(undefined)
  // Keys can come faster than renders (a paste, a quick typist): the handler reads the prompt here.
  const promptRef = useRef<Prompt | undefined>(undefined)
  const setPrompt = useCallback((next: Prompt | undefined) => {
    promptRef.current = next
    setPromptState(next)
  }, [])
  const [view, setView] = useState<"board" | "campaigns" | "help">("board")
  const [message, setMessage] = useState<{ readonly text: string; readonly error: boolean } | undefined>(
    undefined
  )
  const [version, setVersion] = useState(0)
  const alive = useRef(true)

  // The clock: countdowns move every tick.
  useEffect(() => {
    const timer = setInterval(() => setNow(clock()), tickMs)
    return () => clearInterval(timer)
  }, [clock, tickMs])

  // Data: loaded at start and on every change the source reports.
  useEffect(() => {
    alive.current = true
    let loading = false
    let again = false
    const reload = () => {
      if (loading) {
        again = true
        return
      }
      loading = true
      source
        .load()
        .then((loaded) => {
          if (alive.current) {
            setData(loaded)
            setVersion((v) => v + 1)
            setMessage((m) => (m?.error === true && m.text.startsWith("cannot load") ? undefined : m))
          }
        })
        .catch((error: unknown) => {
          if (alive.current) setMessage({ text: `cannot load: ${(error as Error).message}`, error: true })
        })
        .finally(() => {
          loading = false
          if (again) {
            again = false
            reload()
          }
        })
    }
    reload()
    const unsubscribe = source.subscribe(reload)
    return () => {
      alive.current = false
      unsubscribe()
    }
  }, [source])

  const visible = useMemo(
    () => [...(data?.events ?? [])].filter((e) => matches(e, filter)).sort(boardOrder),
    [data, filter]
  )
  // The selection follows its event (not its row) while the list changes; when the event goes
  // (filtered out, cleaned up), its neighbour at the same row is selected.
  const lastIndex = useRef(0)
  const found = visible.findIndex((e) => e.id === selectedId)
  const index = found !== -1 ? found : Math.min(lastIndex.current, Math.max(0, visible.length - 1))
  lastIndex.current = index
  const selected = visible[index]
  useEffect(() => {
    if (selected !== undefined && selected.id !== selectedId) setSelectedId(selected.id)
  }, [selected, selectedId])
  const selectedEventId = selected?.id
  const selectedVersion = selected?.version

  // biome-ignore lint/correctness/useExhaustiveDependencies: `selectedVersion` and `version` say when to read the history again
  useEffect(() => {
    if (selectedEventId === undefined) {
      setHistory([])
      return
    }
    let current = true
    source.history(selectedEventId).then(
      (entries) => {
        if (current) setHistory(entries)
      },
      () => {
        if (current) setHistory([])
      }
    )
    return () => {
      current = false
    }
  }, [source, selectedEventId, selectedVersion, version])

  const act = useCallback((what: string, run: () => Promise<unknown>) => {
    setMessage({ text: `${what}…`, error: false })
    run().then(
      () => setMessage({ text: `${what}: done`, error: false }),
      (error: unknown) => setMessage({ text: `${what}: ${(error as Error).message}`, error: true })
    )
  }, [])

  const needAgent = () => {
    setMessage({ text: "start the TUI with --as AGENT to respond", error: true })
  }

  useInput((input, key) => {
    const prompt = promptRef.current
    if (prompt !== undefined) {
      if (key.escape) {
        if (prompt.kind === "filter") setFilter("")
        setPrompt(undefined)
        return
      }
      if (prompt.kind === "cancel") {
        if (input === "y" || input === "Y") {
          act(`cancel ${shortId(prompt.event.id)}`, () => source.cancel(prompt.event.id, agent))
        }
        setPrompt(undefined)
        return
      }
      // Keys can arrive in one chunk ("10m\r" from a paste or tmux): a newline submits.
      const newline = input.search(/[\r\n]/)
      if (key.return || newline !== -1) {
        const typed = newline === -1 || key.return ? "" : input.slice(0, newline)
        const text = (prompt.text + typed).trim()
        if (prompt.kind === "defer" && agent !== undefined && text !== "") {
          act(`${agent} defers ${shortId(prompt.event.id)} by ${text}`, () =>
            source.defer(prompt.event.id, agent, text)
          )
        }
        if (prompt.kind === "filter") setFilter(prompt.text + typed)
        setPrompt(undefined)
        return
      }
      const text = key.backspace || key.delete ? prompt.text.slice(0, -1) : prompt.text + input
      if (prompt.kind === "filter") setFilter(text)
      setPrompt({ ...prompt, text } as Prompt)
      return
    }
    if (view === "help") {
      setView("board")
      return
    }
    if (input === "q" || (key.ctrl && input === "c")) {
      exit()
      return
    }
    if (input === "?") return setView("help")
    if (key.tab) return setView(view === "campaigns" ? "board" : "campaigns")
    if (view === "campaigns") {
      if (key.escape) setView("board")
      return
    }
    if (key.upArrow || input === "k") return setSelectedId(visible[Math.max(0, index - 1)]?.id)
    if (key.downArrow || input === "j")
      return setSelectedId(visible[Math.min(visible.length - 1, index + 1)]?.id)
    if (input === "/") return setPrompt({ kind: "filter", text: filter })
    if (key.escape && filter !== "") return setFilter("")
    if (selected === undefined) return
    if (input === "c") {
      if (agent === undefined) return needAgent()
      act(`${agent} confirms ${shortId(selected.id)}`, () => source.confirm(selected.id, agent))
    } else if (input === "x") {
      if (agent === undefined) return needAgent()
      act(`${agent} declines ${shortId(selected.id)}`, () => source.decline(selected.id, agent))
    } else if (input === "d") {
      if (agent === undefined) return needAgent()
      setPrompt({ kind: "defer", event: selected, text: "" })
    } else if (input === "K") {
      setPrompt({ kind: "cancel", event: selected })
    }
  })

  const width = Math.max(40, columns)
  const height = Math.max(10, rows)
  const detailLines = Math.max(3, Math.min(8, Math.floor(height / 3)))
  const listLines = Math.max(1, height - detailLines - 5)
  const start = Math.min(
    Math.max(0, index - Math.floor(listLines / 2)),
    Math.max(0, visible.length - listLines)
  )
  const shown = visible.slice(start, start + listLines)
  const events = new Map((data?.events ?? []).map((e) => [e.id, e]))

  const header = h(
    Box,
    { height: 1 },
    h(Text, { bold: true, color: "cyan" }, "t-minus "),
    h(
      Text,
      { dimColor: true, wrap: "truncate-end" },
      `${source.label}${agent === undefined ? "" : `  as ${agent}`}  `
    ),
    h(Box, { flexGrow: 1 }),
    filter === "" ? "" : h(Text, { color: "yellow" }, `filter: ${filter}  `),
    h(Text, {}, `${isoSeconds(new Date(now)).slice(11)}`)
  )

  const footer =
    prompt?.kind === "defer"
      ? h(
          Text,
          { color: "yellow" },
          `defer ${shortId(prompt.event.id)} as ${agent} by (e.g. 10m): ${prompt.text}█`
        )
      : prompt?.kind === "cancel"
        ? h(
            Text,
            { color: "red" },
            `cancel ${prompt.event.name ?? prompt.event.kind} ${shortId(prompt.event.id)}? y/n`
          )
        : prompt?.kind === "filter"
          ? h(Text, { color: "yellow" }, `filter: ${prompt.text}█`)
          : message !== undefined
            ? h(Text, { color: message.error ? "red" : "green", wrap: "truncate-end" }, message.text)
            : h(
                Text,
                { dimColor: true, wrap: "truncate-end" },
                "j/k move c confirm d defer x decline K cancel / filter Tab campaigns ? help q quit"
              )

  let body: ReactNode
  if (view === "help") {
    body = h(
      Box,
      { flexDirection: "column", flexGrow: 1 },
      h(Text, { bold: true }, "keys (any key closes this)"),
      ...HELP_LINES.map((line) => h(Text, { key: line }, `  ${line}`))
    )
  } else if (view === "campaigns") {
    body = h(
      Box,
      { flexDirection: "column", flexGrow: 1, overflow: "hidden" },
      h(Campaigns, { campaigns: data?.campaigns ?? [], events, now })
    )
  } else {
    body = h(
      Box,
      { flexDirection: "column", flexGrow: 1 },
      h(
        Box,
        { flexDirection: "column", height: listLines },
        data === null
          ? h(Text, { dimColor: true }, "loading…")
          : shown.length === 0
            ? h(
                Text,
                { dimColor: true },
                filter === "" ? "no events yet: t-minus schedule …" : "nothing matches the filter"
              )
            : shown.map((event) =>
                h(Row, { key: event.id, event, selected: event.id === selected?.id, now, width })
              )
      ),
      h(Text, { dimColor: true }, "─".repeat(width)),
      h(Box, { height: detailLines }, h(Detail, { event: selected, history, now, lines: detailLines }))
    )
  }
  return h(Box, { flexDirection: "column", width, height }, header, body, footer)
}
