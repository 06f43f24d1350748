/**
 * The cluster's epoch: `<id>|<made after a loss: 1 or 0>|<when, Redis's ms>`, under `<prefix>epoch`,
 * a value set once per Redis database. A node that sees it change knows Redis came back empty (and
 * writes again what it keeps); one made after a loss (by a node that knew the one before, or by a
 * claim, which only a node that served before makes) lets claims settle for a lease (claims.ts).
 *
 * Lua for the scripts that read it: with `now` (Redis's ms) in scope and the epoch's key as
 * KEYS[3], it sets `epoch`, making it from the Lua expressions `id` and `afterLoss` ('1' or '0')
 * when there is none, and reads it into `epochAfterLoss` ('1' or '0') and `epochSince` (ms).
 */
export function epochLua(id: string, afterLoss: string): string {
  return `local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ${id} .. '|' .. ${afterLoss} .. '|' .. now
  redis.call('SET', KEYS[3], epoch)
end
local epochAfterLoss, epochSince = string.match(epoch, '|(%d)|(%d+)$')`;
}
