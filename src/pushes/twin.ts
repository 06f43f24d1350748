import { invalid } from '../core/errors.js';
import { parseDestination, withFullUrl, type Destination, type NamingRules } from '../links/destination.js';
import { checkForPlatform, platformOf } from '../links/platforms.js';
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
