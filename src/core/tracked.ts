/**
 * The maps and sets a long-lived gateway keeps per stream, per client address, per viewer and per
 * destination, by name, with their sizes: what days of use would grow if an entry were left
 * behind. `/metrics` shows them (`gateway_tracked_entries`), and the churn run (`npm run churn`)
 * holds them to where they were. Owners are held weakly: one that is gone is no longer counted.
 */
interface Entry {
  owner: WeakRef<object>;
  size: (owner: object) => number;
}

const tracked = new Map<string, Entry[]>();
/** Entries of a name are looked through for owners gone every this many registrations. */
const PRUNE_AT = 64;

/**
 * Counts `size(owner)` under `name` for as long as `owner` lives (several owners of one name add
 * up). `size` must not hold `owner`: made in the owner's constructor, it would share the context of
 * the constructor's other closures, which hold `this` (V8 gives a scope's closures one context), and
 * keep every owner alive; make it in a static method, as the owners here do.
 */
export function trackSize<T extends object>(name: string, owner: T, size: (owner: T) => number): void {
  let entries = tracked.get(name) ?? [];
  // Owners made per stream come and go: those gone are forgotten as they are registered too, not
  // only when the sizes are read (a thread whose sizes nobody reads would keep every entry).
  if (entries.length >= PRUNE_AT && entries.length % PRUNE_AT === 0)
    entries = entries.filter((entry) => entry.owner.deref() !== undefined);
  entries.push({ owner: new WeakRef(owner), size: size as (owner: object) => number });
  tracked.set(name, entries);
}

/** Every name's entries in this thread now; owners gone are forgotten. */
export function trackedSizes(): Record<string, number> {
  const sizes: Record<string, number> = {};
  for (const [name, entries] of tracked) {
    const live = entries.filter((entry) => entry.owner.deref() !== undefined);
    if (live.length === 0) {
      tracked.delete(name);
      continue;
    }
    tracked.set(name, live);
    sizes[name] = live.reduce((sum, entry) => sum + entry.size(entry.owner.deref()!), 0);
  }
  return sizes;
}
