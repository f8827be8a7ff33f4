import { assert, describe, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"
import { cycleThrough, type Edge, executionOrder } from "../src/CampaignGraph.ts"

/** A random DAG: nodes n0..n(k-1) in add order, edges only from a lower to a higher random rank. */
const dag = FastCheck.integer({ min: 1, max: 30 }).chain((size) =>
  FastCheck.tuple(
    FastCheck.shuffledSubarray(
      Array.from({ length: size }, (_, i) => `n${i}`),
      { minLength: size, maxLength: size }
    ),
    FastCheck.array(FastCheck.tuple(FastCheck.nat(size - 1), FastCheck.nat(size - 1)), {
      maxLength: size * 3
    })
  ).map(([topo, pairs]) => {
    const nodes = Array.from({ length: size }, (_, i) => `n${i}`)
    const seen = new Set<string>()
    const edges: Array<Edge> = []
    for (const [x, y] of pairs) {
      if (x === y) continue
      const [lo, hi] = x < y ? [x, y] : [y, x]
      const edge = [topo[lo]!, topo[hi]!] as const
      if (!seen.has(edge.join(">"))) {
        seen.add(edge.join(">"))
        edges.push(edge)
      }
    }
    return { nodes, edges }
  })
)

const reachable = (edges: ReadonlyArray<Edge>, from: string, to: string): boolean => {
  const stack = [from]
  const seen = new Set<string>()
  while (stack.length > 0) {
    const node = stack.pop()!
    if (node === to) return true
    if (seen.has(node)) continue
    seen.add(node)
    for (const [a, b] of edges) if (a === node) stack.push(b)
  }
  return false
}

describe("execution order", () => {
  it("orders a line, a diamond, and breaks ties by add order", () => {
    assert.deepStrictEqual(
      executionOrder(
        ["a", "b", "c"],
        [
          ["c", "b"],
          ["b", "a"]
        ]
      ),
      ["c", "b", "a"]
    )
    assert.deepStrictEqual(
      executionOrder(
        ["top", "right", "left", "bottom"],
        [
          ["top", "left"],
          ["top", "right"],
          ["left", "bottom"],
          ["right", "bottom"]
        ]
      ),
      ["top", "right", "left", "bottom"]
    )
    assert.deepStrictEqual(executionOrder(["x", "y", "z"], []), ["x", "y", "z"])
  })

  it.prop("is a topological order of every node, the same each time", [dag], ([{ nodes, edges }]) => {
    const order = executionOrder(nodes, edges)
    assert.sameMembers([...order], nodes)
    assert.strictEqual(order.length, nodes.length)
    const position = new Map(order.map((n, i) => [n, i]))
    for (const [from, to] of edges) assert.isBelow(position.get(from)!, position.get(to)!)
    assert.deepStrictEqual(executionOrder(nodes, [...edges].reverse()), order, "edge order does not matter")
  })

  it.prop("places each node as early in add order as its predecessors allow", [dag], ([{ nodes, edges }]) => {
    const order = executionOrder(nodes, edges)
    // At every step the chosen node is the earliest-added among the nodes that were ready then.
    const placed = new Set<string>()
    for (const node of order) {
      const ready = nodes.filter((n) => !placed.has(n) && edges.every(([a, b]) => b !== n || placed.has(a)))
      assert.strictEqual(node, ready[0])
      placed.add(node)
    }
  })
})

describe("cycle detection", () => {
  it("names the cycle from the new link's source", () => {
    assert.deepStrictEqual(
      cycleThrough(
        [
          ["a", "b"],
          ["b", "c"]
        ],
        "c",
        "a"
      ),
      ["c", "a", "b"]
    )
    assert.deepStrictEqual(cycleThrough([], "a", "a"), ["a"])
    assert.strictEqual(cycleThrough([["a", "b"]], "a", "c"), null)
  })

  it.prop(
    "finds a cycle exactly when the new edge would close one, and the cycle is real",
    [dag, FastCheck.nat(29), FastCheck.nat(29)],
    ([{ nodes, edges }, i, j]) => {
      const from = nodes[i % nodes.length]!
      const to = nodes[j % nodes.length]!
      const cycle = cycleThrough(edges, from, to)
      const closes = from === to || reachable(edges, to, from)
      assert.strictEqual(cycle !== null, closes)
      if (cycle !== null) {
        assert.strictEqual(cycle[0], from)
        const withEdge: Array<Edge> = [...edges, [from, to]]
        for (let k = 0; k < cycle.length; k++) {
          const a = cycle[k]!
          const b = cycle[(k + 1) % cycle.length]!
          assert.isTrue(
            withEdge.some(([x, y]) => x === a && y === b),
            `${a} → ${b} is an edge`
          )
        }
        assert.strictEqual(new Set(cycle).size, cycle.length, "members are distinct")
      }
    }
  )
})
