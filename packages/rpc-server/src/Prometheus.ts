/**
 * A small metrics registry rendered in the Prometheus text exposition format (version 0.0.4):
 * counters and histograms with labels. One registry per server, so two servers in one process
 * (tests) never mix their figures.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export type Labels = Readonly<Record<string, string>>

const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')
const escapeHelp = (text: string) => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const labelText = (labels: Labels, extra?: readonly [string, string]) => {
  const pairs = Object.entries(labels)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
  if (extra !== undefined) pairs.push(`${extra[0]}="${escapeLabel(extra[1])}"`)
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`
}

const number = (n: number) =>
  Number.isNaN(n)
    ? "NaN"
    : n === Number.POSITIVE_INFINITY
      ? "+Inf"
      : n === Number.NEGATIVE_INFINITY
        ? "-Inf"
        : String(n)

/** A series' key: its labels, in name order, without the escaping the text format needs. */
const keyOf = (labels: Labels) => {
  const names = Object.keys(labels)
  if (names.length > 1) names.sort()
  let key = ""
  for (const name of names) key += `${name}\u0000${labels[name]}\u0001`
  return key
}

/** @since 0.1.0 */
export interface Counter {
  readonly inc: (labels?: Labels, by?: number) => void
  readonly value: (labels?: Labels) => number
}

/** @since 0.1.0 */
export interface Histogram {
  readonly observe: (value: number, labels?: Labels) => void
  readonly count: (labels?: Labels) => number
}

interface Family {
  readonly name: string
  readonly render: () => Array<string>
}

/**
 * @since 0.1.0
 */
export class Registry {
  private readonly families: Array<Family> = []

  counter(name: string, help: string): Counter {
    const series = new Map<string, { labels: Labels; value: number }>()
    this.families.push({
      name,
      render: () => [
        `# HELP ${name} ${escapeHelp(help)}`,
        `# TYPE ${name} counter`,
        ...[...series.values()].map((s) => `${name}${labelText(s.labels)} ${number(s.value)}`)
      ]
    })
    return {
      inc: (labels = {}, by = 1) => {
        const key = keyOf(labels)
        const s = series.get(key)
        if (s === undefined) series.set(key, { labels, value: by })
        else s.value += by
      },
      value: (labels = {}) => series.get(keyOf(labels))?.value ?? 0
    }
  }

  /** `buckets`: upper bounds, ascending; `+Inf` is added. */
  histogram(name: string, help: string, buckets: ReadonlyArray<number>): Histogram {
    const bounds = [...buckets].sort((a, b) => a - b)
    const series = new Map<string, { labels: Labels; counts: Array<number>; sum: number; count: number }>()
    this.families.push({
      name,
      render: () => {
        const lines = [`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} histogram`]
        for (const s of series.values()) {
          let cumulative = 0
          for (let i = 0; i < bounds.length; i++) {
            cumulative += s.counts[i]!
            lines.push(`${name}_bucket${labelText(s.labels, ["le", number(bounds[i]!)])} ${cumulative}`)
          }
          lines.push(`${name}_bucket${labelText(s.labels, ["le", "+Inf"])} ${s.count}`)
          lines.push(`${name}_sum${labelText(s.labels)} ${number(s.sum)}`)
          lines.push(`${name}_count${labelText(s.labels)} ${s.count}`)
        }
        return lines
      }
    })
    return {
      observe: (value, labels = {}) => {
        const key = keyOf(labels)
        let s = series.get(key)
        if (s === undefined) {
          s = { labels, counts: bounds.map(() => 0), sum: 0, count: 0 }
          series.set(key, s)
        }
        const i = bounds.findIndex((b) => value <= b)
        if (i >= 0) s.counts[i]! += 1
        s.sum += value
        s.count += 1
      },
      count: (labels = {}) => series.get(keyOf(labels))?.count ?? 0
    }
  }

  /** The exposition text, content type `text/plain; version=0.0.4`. */
  render(): string {
    return `${this.families.flatMap((f) => f.render()).join("\n")}\n`
  }
}

/** The content type of `Registry.render`. @since 0.1.0 */
export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
