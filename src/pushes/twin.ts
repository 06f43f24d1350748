import { invalid } from '../core/errors.js';
import { parseDestination, withFullUrl, type Destination, type NamingRules } from '../links/destination.js';
import { checkForPlatform, platformOf } from '../links/platforms.js';
import type { Push } from './push.js';
import type { StartupRequest } from './requests.js';

/**
 * A push's backup (`backupUrl`): its destination, checked as the primary's is before anything
 * starts, and refused with a 400 naming `backupUrl` when it is not an RTMP ingest of its own or
 * its platform refuses what the request asks.
 */
export function backupDestination(request: StartupRequest & { backupUrl: string }, rules: NamingRules): Destination {
  const naming = withFullUrl(rules, request.rtmpTransponderFullUrl);
  const backup = parseDestination(request.backupUrl, request.streamName, naming, 'backupUrl');
  const primary = parseDestination(request.rtmpUrl, request.streamName, naming, 'rtmpUrl');
  if (backup.protocol !== 'rtmp' && backup.protocol !== 'rtmps')
    throw invalid('backupUrl', 'must be an RTMP or RTMPS ingest (rtmp:// or rtmps://)');
  if (backup.url === primary.url) throw invalid('backupUrl', 'is the same as rtmpUrl');
  const platform = platformOf(request.platform, backup);
  if (platform) checkForPlatform(platform.platform, backup, request, 'backupUrl');
  return backup;
}

/** Finds a push by its id, while it is listed. */
type Lookup = (mediaSessionId: string) => Push | undefined;

/**
 * Backups of `streamName` to `ingest` whose primary failed or went: a startup to the same ingest
 * replaces them.
 */
export function staleBackups(pushes: Push[], streamName: string, ingest: Destination, lookup: Lookup): Push[] {
  return pushes.filter(
    (p) =>
      p.twin?.role === 'backup' &&
      p.publisher.name === streamName &&
      p.destination.url === ingest.url &&
      !lookup(p.twin.mediaSessionId ?? '')?.isActive,
  );
}

/** The push, and the backups listed as its twins (one, or one still starting); a backup alone. */
export function withBackups(push: Push, pushes: Push[]): Push[] {
  if (push.twin?.role === 'backup') return [push];
  return [push, ...pushes.filter((p) => p.twin?.role === 'backup' && p.twin.mediaSessionId === push.mediaSessionId)];
}

/** A push no longer listed: when it was a backup, its primary says so in `backupError` (and goes on). */
export function backupGone(push: Push, lookup: Lookup): void {
  const primary = push.twin?.role === 'backup' ? lookup(push.twin.mediaSessionId ?? '') : undefined;
  if (primary?.twin?.mediaSessionId === push.mediaSessionId)
    primary.twin = { role: 'primary', error: 'its backup ended' };
}
