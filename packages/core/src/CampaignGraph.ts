/**
 * Campaign dependency DAGs (SPEC 4.7) as pure functions: cycle detection that names the cycle,
 * and a deterministic Kahn order whose ties are broken by the order events joined the campaign.
 *
 * @since 0.1.0
 */

/** A dependency `[from, to]`: `from` must fire before `to`. @since 0.1.0 */
export type Edge = readonly [from: string, to: string]

/**
 * The cycle that the edge `from → to` would close, as its members in order starting with `from`
 * (`from → to → … → from`), or `null` when the edge keeps the graph acyclic.
 *
 * @since 0.1.0
 */
export const cycleThrough = (
  edges: ReadonlyArray<Edge>,
  from: string,
  to: string
): ReadonlyArray<string> | null => {
  if (from === to) return [from]
  const next = adjacency(edges)
  // Breadth-first from `to`, remembering parents, so the cycle reported is the shortest one.
  const parent = new Map<string, string>()
  const queue = [to]
  const seen = new Set([to])
  while (queue.length > 0) {
    const node = queue.shift()!
    if (node === from) {
      const path = [from]
      let cursor = from
      while (cursor !== to) {
        cursor = parent.get(cursor)!
        path.push(cursor)
      }
      // path runs from → … → to backwards; the cycle reads from → to → … → (back to from).
      return [from, ...path.slice(1).reverse()]
    }
    for (const succ of next.get(node) ?? []) {
      if (!seen.has(succ)) {
        seen.add(succ)
        parent.set(succ, node)
        queue.push(succ)
      }
    }
  }
  return null
}

const adjacency = (edges: ReadonlyArray<Edge>): Map<string, Array<string>> => {
  const next = new Map<string, Array<string>>()
  for (const [a, b] of edges) {
    const list = next.get(a)
    if (list === undefined) next.set(a, [b])
    else list.push(b)
  }
  return next
}

/**
 * Kahn's topological order of `nodes` (given in the order they joined the campaign): among the
 * events whose predecessors are all placed, the earliest added goes first. Deterministic for the
 * same input. Edges must be acyclic (links are checked when they are made).
 *
 * @since 0.1.0
 */
export const executionOrder = (
  nodes: ReadonlyArray<string>,
  edges: ReadonlyArray<Edge>
): ReadonlyArray<string> => {
  const rank = new Map(nodes.map((node, i) => [node, i]))
  const indegree = new Map(nodes.map((node) => [node, 0]))
  const next = adjacency(edges)
  for (const [, to] of edges) indegree.set(to, (indegree.get(to) ?? 0) + 1)
  // Ready set kept sorted by rank, so the earliest-added ready node is always first.
  const ready = nodes.filter((node) => indegree.get(node) === 0)
  const order: Array<string> = []
  while (ready.length > 0) {
    const node = ready.shift()!
    order.push(node)
    for (const succ of next.get(node) ?? []) {
      const left = indegree.get(succ)! - 1
      indegree.set(succ, left)
      if (left === 0) insertByRank(ready, succ, rank)
    }
  }
  return order
}

const insertByRank = (ready: Array<string>, node: string, rank: Map<string, number>) => {
  const r = rank.get(node) ?? Number.MAX_SAFE_INTEGER
  let lo = 0
  let hi = ready.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((rank.get(ready[mid]!) ?? Number.MAX_SAFE_INTEGER) < r) lo = mid + 1
    else hi = mid
  }
  ready.splice(lo, 0, node)
}
