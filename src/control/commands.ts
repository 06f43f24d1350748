import type { PushInfo } from '../pushes/info.js';
import type { SoundRequest, StartupRequest } from '../pushes/requests.js';
import type {
  MixerAudioVideo,
  MixerInfo,
  MixerInputRequest,
  MixerLabelRequest,
  MixerLayoutRequest,
  MixerStartup,
} from '../mixers/requests.js';
import type { MediaPlane } from '../plane/plane.js';

/**
 * The REST API's commands, as the routes give them and the keepers take them: requests checked
 * once, where they arrived (the route's schema), and carried as their schemas' output types. The
 * routes import these types and nothing of what implements them: the plane's own commands below, or
 * a keeper's (`push-keeper.ts`, `mixer-keeper.ts`), which also keeps what was started.
 */

/** The push commands (`/rest-api/push/*` but `find`). */
export interface PushCommands {
  /** `startedBy`: who asked (`rest`, `rest:<API key id>`). */
  startup(request: StartupRequest, startedBy: string): Promise<PushInfo>;
  terminate(mediaSessionId: string): Promise<void>;
  setMuted(mediaSessionId: string, muted: boolean): Promise<void>;
  soundOn(mediaSessionId: string, sound: SoundRequest): Promise<void>;
  soundOff(mediaSessionId: string): Promise<void>;
}

/** The mixer commands (`/rest-api/mixer/*` but `find_all`). */
export interface MixerCommands {
  startup(request: MixerStartup): Promise<MixerInfo>;
  add(request: MixerInputRequest): Promise<MixerInfo>;
  remove(request: { uri: string; remoteStreamName: string }): Promise<MixerInfo>;
  layout(request: MixerLayoutRequest): Promise<MixerInfo>;
  label(request: MixerLabelRequest): Promise<MixerInfo>;
  audioVideo(request: MixerAudioVideo): Promise<MixerInfo>;
  terminate(uri: string): Promise<void>;
}

/** The push commands of a gateway that keeps nothing: the plane's. */
export function planePushCommands(plane: MediaPlane): PushCommands {
  return {
    startup: (request) => plane.startup(request),
    terminate: (id) => plane.terminate(id),
    setMuted: (id, muted) => plane.setMuted(id, muted),
    soundOn: (id, sound) => plane.soundOn(id, sound),
    soundOff: (id) => plane.soundOff(id),
  };
}

/** The mixer commands of a gateway that keeps nothing: the plane's. */
export function planeMixerCommands(plane: MediaPlane): MixerCommands {
  return {
    startup: (request) => plane.mixerStartup(request),
    add: (request) => plane.mixerAdd(request),
    remove: (request) => plane.mixerRemove(request),
    layout: (request) => plane.mixerLayout(request),
    label: (request) => plane.mixerLabel(request),
    audioVideo: (request) => plane.mixerAudioVideo(request),
    terminate: (uri) => plane.mixerTerminate(uri),
  };
}
