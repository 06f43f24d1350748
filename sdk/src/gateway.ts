/**
 * Browser SDK for the gateway: publish the camera over WebRTC and have the gateway republish it to
 * RTMP destinations, each with its own status; the connection comes back by itself after a drop.
 *
 *   const session = createSession({ urlServer: 'wss://gateway.example.com' });
 *   session.on(SESSION_STATUS.ESTABLISHED, () => {
 *     session.createStream({ name: 'test', display: el, destinations: [{ id: 'yt', rtmpUrl: 'rtmp://host/live/key', rtmpTransponderFullUrl: true }] })
 *       .on(STREAM_STATUS.DESTINATION, (e) => console.log(e.destination.id, e.destination.state, e.destination.reason))
 *       .publish();
 *   });
 */

import { Session } from './session.js';
import type { SessionOptions } from './types.js';

export * from './types.js';
export { Session } from './session.js';
export { Stream } from './stream.js';
export { watch, type Viewer, type WatchOptions } from './viewer.js';

export function createSession(options: SessionOptions): Session {
  return new Session(options);
}
