/**
 * What a V8 heap snapshot holds, by kind: each group of nodes (objects by constructor, closures by
 * function, strings, arrays, code…) with its count and its bytes; and what grew between two.
 */
import { readFile } from 'node:fs/promises';

export interface HeapGroup {
  count: number;
  bytes: number;
}

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Kinds whose nodes are told apart by name; the others (strings, code, numbers…) are one group each. */
const NAMED = new Set(['object', 'closure', 'native', 'array', 'regexp']);

/** The groups of the snapshot in `path` (a `.heapsnapshot` file as Chrome's DevTools writes it). */
export async function heapGroups(path: string): Promise<Map<string, HeapGroup>> {
  const parsed = JSON.parse(await readFile(path, 'utf8')) as Snapshot;
  const fields = parsed.snapshot.meta.node_fields;
  const kinds = parsed.snapshot.meta.node_types[0];
  const [type, name, size] = ['type', 'name', 'self_size'].map((field) => fields.indexOf(field)) as [
    number,
    number,
    number,
  ];
  const groups = new Map<string, HeapGroup>();
  for (let at = 0; at < parsed.nodes.length; at += fields.length) {
    const kind = kinds[parsed.nodes[at + type]!]!;
    const key = NAMED.has(kind) ? `${kind} ${parsed.strings[parsed.nodes[at + name]!]!.slice(0, 80)}` : `(${kind})`;
    const group = groups.get(key) ?? { count: 0, bytes: 0 };
    group.count++;
    group.bytes += parsed.nodes[at + size]!;
    groups.set(key, group);
  }
  return groups;
}

/** The `top` groups that grew most in bytes from `before` to `after`, with their growth in count. */
export function heapGrowth(
  before: Map<string, HeapGroup>,
  after: Map<string, HeapGroup>,
  top: number,
): { key: string; count: number; bytes: number }[] {
  const grown = [...after].map(([key, group]) => {
    const was = before.get(key) ?? { count: 0, bytes: 0 };
    return { key, count: group.count - was.count, bytes: group.bytes - was.bytes };
  });
  return grown
    .filter((group) => group.bytes > 0)
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, top);
}
